"""The vLLM backend; runs only where vllm imports and a GPU is visible (requirements-gpu.txt)."""

import pytest

vllm = pytest.importorskip("vllm")
torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="vLLM needs a CUDA device")]


@pytest.fixture(scope="module")
def backend():
    from arc24_lib.inference.vllm import VLLMBackend

    return VLLMBackend("embedded", max_model_len=8192, gpu_memory_utilization=0.5, enforce_eager=True)


def test_vllm_generates_with_logprobs_and_stops_at_end_token(backend, arc1_training):
    from arc24_lib.encoders import DEFAULT_ENCODER, parse_encoder
    from arc24_lib.inference.backend import GenerationConfig
    from arc24_lib.prompting import create_prompt

    task = arc1_training["6150a2bd"].without_solutions()
    prompt = create_prompt(task, parse_encoder(DEFAULT_ENCODER), "output-from-examples-v0", backend.tokenizer)
    generations = backend.generate([prompt.text] * 3, GenerationConfig(max_new_tokens=64))
    assert len({g.text for g in generations}) == 1  # greedy
    assert generations[0].cumulative_logprob <= 0 and generations[0].n_tokens == len(generations[0].token_ids)


def test_vllm_per_task_lora_adapter(backend, tmp_path):
    from peft import LoraConfig, get_peft_model

    from arc24_lib.inference.backend import GenerationConfig
    from arc24_lib.models import load_model

    model = get_peft_model(load_model("embedded", device="cpu"),
                           LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(tmp_path / "adapter")
    prompt = "<|im_start|>user\nCount to five.<|im_end|>\n<|im_start|>assistant\n"
    base = backend.generate([prompt], GenerationConfig(max_new_tokens=16))[0]
    adapted = backend.generate([prompt], GenerationConfig(max_new_tokens=16), str(tmp_path / "adapter"))[0]
    assert base.token_ids != adapted.token_ids


def test_vllm_score_agrees_with_the_hf_backend(backend, arc1_training):
    from arc24_lib.encoders import DEFAULT_ENCODER, parse_encoder
    from arc24_lib.inference.hf import HFBackend
    from arc24_lib.prompting import create_prompt

    encoder = parse_encoder(DEFAULT_ENCODER)
    prompts = [create_prompt(arc1_training[task_id], encoder, "output-from-examples-v0", backend.tokenizer)
               for task_id in ("6150a2bd", "0d3d703e", "74dd1130")]
    texts, answers = [p.text for p in prompts], [p.answer for p in prompts]
    vllm_scores = backend.score(texts, answers)
    hf_scores = HFBackend("embedded", device="cpu").score(texts, answers)
    assert all(score < 0 for score in vllm_scores)
    assert vllm_scores == pytest.approx(hf_scores, rel=0.05, abs=0.5)  # bf16 on the GPU, fp32 on the CPU
