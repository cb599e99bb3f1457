"""Shape-held decoding inside the vLLM engine: the same ShapeHold the hf backend applies, as a vLLM
logits processor. The engine imports this module by name (VLLMBackend passes it to `vllm.LLM`); a
request asks for the hold with `SamplingParams(extra_args={HOLD_ENCODER_KEY: <grid encoder string>})`, and
a search rollout, whose prompt ends with part of the answer, names that part with HOLD_PREFIX_KEY."""

from __future__ import annotations

from functools import partial

import torch
from vllm import SamplingParams
from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

from arc24_lib.inference.shape_hold import ShapeHold, ShapeHolds
from arc24_lib.inference.vllm import HOLD_ENCODER_KEY, HOLD_PREFIX_KEY
from arc24_lib.models import load_tokenizer


def hold_logits(hold: ShapeHold, prefix: tuple[int, ...], output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
    """Leave only the tokens `hold` allows after the answer `prefix` + `output_ids` (one request's row)."""
    allowed = hold.allowed([*prefix, *output_ids])
    if allowed is None:
        return logits
    index = torch.tensor(allowed, device=logits.device)
    kept = logits[index]
    logits.fill_(float("-inf"))
    logits[index] = kept
    return logits


class HeldShapeProcessor(AdapterLogitsProcessor):
    """Per request with a hold encoder: once the answer's header declares a shape, only the tokens that
    shape allows. Requests without one are left alone."""

    def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool):
        super().__init__(vllm_config, device, is_pin_memory)
        self._tokenizer_path = vllm_config.model_config.tokenizer
        self._holds: ShapeHolds | None = None  # the tokenizer is loaded at the first held request

    def is_argmax_invariant(self) -> bool:
        return False  # it changes which token greedy decoding takes

    def _hold(self, encoder: str) -> ShapeHold | None:
        if self._holds is None:
            self._holds = ShapeHolds(load_tokenizer(self._tokenizer_path))
        return self._holds.get(encoder)

    def new_req_logits_processor(self, params: SamplingParams):
        extra = params.extra_args or {}
        hold = self._hold(extra[HOLD_ENCODER_KEY]) if extra.get(HOLD_ENCODER_KEY) else None
        return None if hold is None else partial(hold_logits, hold, tuple(extra.get(HOLD_PREFIX_KEY, ())))
