"""The backend interface: prompts in; per output its text, token ids, log-probability and length."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

BACKENDS = ("hf", "vllm")


@dataclass(frozen=True)
class Generation:
    """One model output for one prompt."""

    text: str  # decoded new tokens, the end token excluded
    token_ids: list[int]  # new tokens, the end token included when generation stopped on it
    cumulative_logprob: float  # sum of the log-probabilities of token_ids
    n_tokens: int


@dataclass
class GenerationConfig:
    """How to decode: greedy when temperature is 0."""

    max_new_tokens: int = field(default=1024, metadata={"help": "longest answer in tokens"})
    temperature: float = field(default=0.0, metadata={"help": "0 for greedy decoding"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass (with temperature > 0)"})
    seed: int = field(default=0, metadata={"help": "seed of sampled decoding"})
    shape_hold_encoder: str | None = field(default=None, metadata={
        "help": "grid encoder of the answers; when it writes a shape header, each answer's body is held to "
                "the shape its header declares (both backends)"})

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"bad generation config {self}: need max_new_tokens >= 1, temperature >= 0, "
                             "0 < top_p <= 1")


@dataclass
class SearchConfig:
    """How far the depth-first search goes for each prompt."""

    min_prob: float = field(default=0.1, metadata={
        "help": "a branch is pruned as soon as its probability falls below this"})
    max_candidates: int = field(default=8, metadata={"help": "the search of a prompt ends at this many answers"})
    max_explored_tokens: int = field(default=4096, metadata={
        "help": "the search of a prompt ends after this many tokens run through the model"})

    def __post_init__(self) -> None:
        if not 0 < self.min_prob <= 1 or self.max_candidates < 1 or self.max_explored_tokens < 1:
            raise ValueError(f"bad search config {self}: need 0 < min_prob <= 1, max_candidates >= 1, "
                             "max_explored_tokens >= 1")


def answer_limits(n_prompts: int, config: GenerationConfig, max_new_tokens: Sequence[int] | None) -> list[int]:
    """Each prompt's answer limit: `max_new_tokens` where given, else `config.max_new_tokens` for all."""
    return list(max_new_tokens) if max_new_tokens is not None else [config.max_new_tokens] * n_prompts


class Backend(Protocol):
    """What the AIRV loop needs from a model runtime."""

    def generate(self, prompts: Sequence[str], config: GenerationConfig, adapter_path: str | None = None,
                 max_new_tokens: Sequence[int] | None = None) -> list[Generation]:
        """One generation per prompt, in the prompts' order, with an optional LoRA adapter.

        `max_new_tokens`, when given, is a limit per prompt in place of `config.max_new_tokens`:
        each answer is exactly what the prompt alone would give with its own limit.
        """
        ...

    def search(self, prompts: Sequence[str], config: GenerationConfig, search: SearchConfig,
               adapter_path: str | None = None, max_new_tokens: Sequence[int] | None = None) -> list[list[Generation]]:
        """Per prompt, every answer a depth-first search finds above `search.min_prob` (inference.dfs),
        in the order found; decoding options as in `generate` (the shape hold applies inside the search)."""
        ...

    def score(self, prompts: Sequence[str], answers: Sequence[str], adapter_path: str | None = None) -> list[float]:
        """Sum of the log-probabilities of each answer's tokens after its prompt (teacher forcing);
        prompt and answer are tokenized apart, as in training."""
        ...


def backend_tokenizer(backend: Backend, model_path: str) -> Any:
    """The tokenizer the backend runs with, else the model's own."""
    from arc24_lib.models import load_tokenizer

    return getattr(backend, "tokenizer", None) or load_tokenizer(model_path)
