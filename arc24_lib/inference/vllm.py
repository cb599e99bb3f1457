"""vLLM backend (GPU only): consistent max_model_len, tensor parallel, per-task LoRA adapters.

vLLM comes from requirements-gpu.txt and is imported only here, when this backend is built.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from arc24_lib.inference.backend import Generation, GenerationConfig
from arc24_lib.models import check_context, resolve_model_path

logger = logging.getLogger(__name__)


def _gpu_dtype() -> str:
    """bfloat16 where the GPU has it (L4, A100, H100), float16 on older cards such as the T4."""
    import torch

    return "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float16"


def _adapter_rank(adapter_path: str) -> int:
    return int(json.loads((Path(adapter_path) / "adapter_config.json").read_text())["r"])


class VLLMBackend:
    """Generation with `vllm.LLM`; a LoRARequest per adapter folder."""

    def __init__(self, model_path: str = "embedded", max_model_len: int = 8192, tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.9, enforce_eager: bool = False, dtype: str | None = None,
                 max_lora_rank: int = 64, seed: int = 0):
        try:
            from vllm import LLM
        except ImportError as error:
            raise ImportError("the vllm backend needs vllm (pip install -r requirements-gpu.txt on a GPU "
                              "machine); use backend='hf' elsewhere") from error
        path = resolve_model_path(model_path)
        problems = check_context(path, max_model_len) if Path(path).is_dir() else []
        if problems:
            raise ValueError(f"{path} does not agree with max_model_len {max_model_len}: {'; '.join(problems)}")
        self.max_lora_rank = max_lora_rank
        self.llm = LLM(model=path, max_model_len=max_model_len, tensor_parallel_size=tensor_parallel_size,
                       gpu_memory_utilization=gpu_memory_utilization, enforce_eager=enforce_eager,
                       dtype=dtype or _gpu_dtype(), enable_lora=True, max_lora_rank=max_lora_rank, seed=seed)
        self.tokenizer = self.llm.get_tokenizer()
        self._adapter_ids: dict[str, int] = {}
        self._warned_hold = False

    def _lora_request(self, adapter_path: str | None):
        if adapter_path is None:
            return None
        from vllm.lora.request import LoRARequest

        adapter_path = str(adapter_path)
        if _adapter_rank(adapter_path) > self.max_lora_rank:
            raise ValueError(f"adapter {adapter_path} has rank above max_lora_rank {self.max_lora_rank}")
        lora_id = self._adapter_ids.setdefault(adapter_path, len(self._adapter_ids) + 1)
        return LoRARequest(f"adapter-{lora_id}", lora_id, adapter_path)

    def generate(self, prompts: Sequence[str], config: GenerationConfig, adapter_path: str | None = None,
                 max_new_tokens: Sequence[int] | None = None) -> list[Generation]:
        """One generation per prompt, in order; `max_new_tokens` optionally limits each prompt."""
        from vllm import SamplingParams

        if config.shape_hold_encoder is not None and not self._warned_hold:
            logger.warning("the vllm backend does not hold answers to their declared shape yet; they stay free")
            self._warned_hold = True
        limits = list(max_new_tokens) if max_new_tokens is not None else [config.max_new_tokens] * len(prompts)
        params = [SamplingParams(temperature=config.temperature, top_p=config.top_p, max_tokens=limit,
                                 seed=config.seed if config.temperature > 0 else None, logprobs=0)
                  for limit in limits]
        # pass token ids, not text: the prompt already holds the chat template's special tokens
        prompt_ids = [{"prompt_token_ids": ids}
                      for ids in self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
        outputs = self.llm.generate(prompt_ids, params, lora_request=self._lora_request(adapter_path),
                                    use_tqdm=False)
        generations = []
        for output in outputs:
            completion = output.outputs[0]
            logprob = completion.cumulative_logprob
            if logprob is None and completion.logprobs:
                logprob = sum(step[token].logprob for step, token in zip(completion.logprobs, completion.token_ids,
                                                                         strict=False))
            generations.append(Generation(text=completion.text, token_ids=list(completion.token_ids),
                                          cumulative_logprob=float(logprob or 0.0),
                                          n_tokens=len(completion.token_ids)))
        return generations

    def score(self, prompts: Sequence[str], answers: Sequence[str], adapter_path: str | None = None) -> list[float]:
        """Sum of log-probabilities of each answer after its prompt, from vLLM's prompt log-probabilities."""
        from vllm import SamplingParams

        prompt_ids = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        answer_ids = self.tokenizer(list(answers), add_special_tokens=False)["input_ids"]
        params = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0)
        outputs = self.llm.generate([{"prompt_token_ids": p + a} for p, a in zip(prompt_ids, answer_ids, strict=True)],
                                    params, lora_request=self._lora_request(adapter_path), use_tqdm=False)
        scores = []
        for output, prompt, answer in zip(outputs, prompt_ids, answer_ids, strict=True):
            positions = output.prompt_logprobs[len(prompt):]  # one {token id: Logprob} per answer token
            scores.append(float(sum(position[token].logprob
                                    for position, token in zip(positions, answer, strict=True))))
        return scores
