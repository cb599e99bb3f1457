"""Depth-first search on the vLLM engine: the answers of `inference.dfs`, in the same order, found by
greedy rollouts. The engine gives no access to its KV cache between requests, so a branch is a
request of its own: the prompt and the branch's path as the request's prompt (prefix caching keeps
that prefill cheap), decoded greedily to its end with the top log-probabilities at every step. The
alternatives above the threshold along a rollout become the branches of later requests, deepest
first; each round sends the next branch of every prompt together.

The top `logprobs_needed(min_prob)` tokens hold every child above `min_prob` on a free step (at most
1/min_prob tokens can each have that probability). Under a shape hold a cell's probability is
relative to the ten colours: exact when all ten are among the top tokens, which `inexact_steps`
counts otherwise (the colours missing are left out).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from arc24_lib.data import N_COLORS
from arc24_lib.inference.backend import SearchConfig
from arc24_lib.inference.dfs import Found, ranked_children
from arc24_lib.inference.shape_hold import ShapeHold

MAX_SEARCH_LOGPROBS = 64  # the engine's max_logprobs: min_prob down to 1/64


def logprobs_needed(min_prob: float) -> int:
    """Top log-probabilities per step that hold every child above `min_prob`, and every colour."""
    needed = max(math.floor(1 / min_prob), N_COLORS)
    if needed > MAX_SEARCH_LOGPROBS:
        raise ValueError(f"min_prob {min_prob} needs the top {needed} log-probabilities per step; the vllm backend "
                         f"returns {MAX_SEARCH_LOGPROBS} (min_prob >= {1 / MAX_SEARCH_LOGPROBS:.4f})")
    return needed


@dataclass(frozen=True)
class Pending:
    """A branch to roll out: the answer's tokens so far, the last one being the branch's own."""

    path: tuple[int, ...]
    logprob: float  # the model's own, summed over path
    search_logprob: float


@dataclass
class RolloutSearch:
    """The search of one prompt: branches still to roll out, answers found, tokens explored."""

    limit: int
    config: SearchConfig
    eos: int
    hold: ShapeHold | None
    kept: frozenset[int] | None = None  # a reduced vocabulary: the tokens a free step may take
    stack: list[Pending] = field(default_factory=lambda: [Pending((), 0.0, 0.0)])
    found: list[Found] = field(default_factory=list)
    explored: int = 0
    inexact_steps: int = 0

    def next_branch(self) -> Pending | None:
        """The next branch to roll out, after recording the answers that end on the way; None when done."""
        while self.stack and len(self.found) < self.config.max_candidates:
            if self.explored >= self.config.max_explored_tokens:
                return None
            branch = self.stack.pop()
            if branch.path and branch.path[-1] == self.eos:
                self.found.append(Found(branch.path, branch.logprob, branch.search_logprob))
                continue
            if len(branch.path) >= self.limit:  # no room left for the end token
                continue
            self.explored += len(branch.path) > 0  # the root's prompt was never a branch
            return branch
        return None

    def walk(self, branch: Pending, token_ids: list[int], step_logprobs: list[dict[int, float]]) -> None:
        """Follow one rollout of `branch` while it stays above the threshold, stacking the alternatives."""
        path, logprob, search_logprob = list(branch.path), branch.logprob, branch.search_logprob
        for token, raw in zip(token_ids, step_logprobs, strict=False):
            if self.explored >= self.config.max_explored_tokens or len(self.found) >= self.config.max_candidates:
                return  # where the cached search would stop too
            children = ranked_children(self._children(path, raw), len(path), search_logprob, self.config.min_prob)
            chosen = next((child for child in children if child.token == token), None)
            self.stack += [Pending((*path, child.token), logprob + child.logprob, child.search_logprob)
                           for child in reversed(children) if child is not chosen]
            if chosen is None:  # the rollout fell below the threshold here
                return
            path.append(token)
            logprob, search_logprob = logprob + chosen.logprob, chosen.search_logprob
            if token == self.eos:
                self.found.append(Found(tuple(path), logprob, search_logprob))
                return
            if len(path) >= self.limit:  # no room left for the end token
                return
            self.explored += 1

    def _children(self, path: list[int], raw: dict[int, float]) -> list[tuple[int, float, float]]:
        """(token, search log-probability, model log-probability) of the returned tokens after `path`."""
        allowed = self.hold.allowed(path) if self.hold is not None else None
        if allowed is None:
            return [(token, logprob, logprob) for token, logprob in raw.items()
                    if self.kept is None or token in self.kept]
        present = [token for token in allowed if token in raw]
        self.inexact_steps += len(present) < len(allowed)
        total = math.log(sum(math.exp(raw[token]) for token in present)) if present else 0.0
        return [(token, raw[token] - total, raw[token]) for token in present]


def search_rounds(engine_generate: Any, prompt_ids: list[list[int]], limits: list[int], config: SearchConfig,
                  eos: int, hold: ShapeHold | None, kept: tuple[int, ...] | None = None) -> list[RolloutSearch]:
    """Run every prompt's search; `engine_generate(requests)` takes (prompt token ids, path, max new tokens)
    per request and returns (token ids, per step {token id: log-probability}) per request. `kept`: a reduced
    vocabulary, the only tokens a step the hold leaves free may take (the engine must keep to it too)."""
    kept_set = frozenset(kept) if kept else None
    searches = [RolloutSearch(limit, config, eos, hold, kept_set) for limit in limits]
    while True:
        branches = [(index, search.next_branch()) for index, search in enumerate(searches)]
        branches = [(index, branch) for index, branch in branches if branch is not None]
        if not branches:
            return searches
        requests = [(prompt_ids[index], branch.path, limits[index] - len(branch.path)) for index, branch in branches]
        for (index, branch), (tokens, steps) in zip(branches, engine_generate(requests), strict=True):
            searches[index].walk(branch, tokens, steps)
