"""Depth-first candidate search (I3): every answer whose probability stays above a threshold, not only
the greedy one. The 2024 winners made their candidates this way and chose among them by augmented
scoring; a small model often ranks the right grid second at a single cell, which greedy never writes.

The search runs on one KV cache per batch of prompts. A branch never recomputes its prefix: each
explored token is one cache column, and a branch attends to its prompt and the columns of its own
path only (the attention mask hides the columns of abandoned siblings). Several prompts search side
by side, one token each per forward pass, and a prompt leaves the batch when its search ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from arc24_lib.inference.backend import Generation, SearchConfig
from arc24_lib.inference.shape_hold import ShapeHold


@dataclass(frozen=True)
class Found:
    """One answer of the search: its tokens (the end token included) and log-probabilities."""

    token_ids: tuple[int, ...]
    logprob: float  # the model's own, summed over token_ids
    search_logprob: float  # what the search pruned on: under a shape hold, relative to the tokens it allows


def as_generation(found: Found, tokenizer: Any) -> Generation:
    """A search answer as the backends return it: the text without the end token."""
    return Generation(text=tokenizer.decode(list(found.token_ids[:-1]), skip_special_tokens=True),
                      token_ids=list(found.token_ids), cumulative_logprob=found.logprob, n_tokens=len(found.token_ids))


@dataclass(frozen=True)
class Branch:
    """A next token to try after the first `depth` tokens of the path being explored."""

    depth: int
    token: int
    search_logprob: float  # cumulative, `token` included
    logprob: float  # the model's own, `token` only


def ranked_children(children: list[tuple[int, float, float]], depth: int, parent: float,
                    min_prob: float) -> list[Branch]:
    """The (token, search log-probability, model log-probability) children whose cumulative search
    probability after `parent` is at least `min_prob`, best first (ties: the lower token id)."""
    kept = [(token, parent + search, own) for token, search, own in children
            if parent + search >= math.log(min_prob)]
    return [Branch(depth, token, search, own) for token, search, own in sorted(kept, key=lambda c: (-c[1], c[0]))]


class _PromptSearch:
    """The search state of one prompt: a stack of branches still to try and the path being explored."""

    def __init__(self, limit: int, config: SearchConfig, eos: int):
        self.limit, self.config, self.eos = limit, config, eos
        self.stack: list[Branch] = []
        self.path: list[int] = []  # tokens of the answer so far
        self.path_logprobs: list[float] = []
        self.path_search: list[float] = []  # cumulative search log-probability after each path token
        self.path_columns: list[int] = []  # the cache column holding each path token
        self.found: list[Found] = []
        self.explored = 0

    def expand(self, logprobs: torch.Tensor, hold: ShapeHold | None, kept_mask: torch.Tensor | None) -> None:
        """Push the children of the current path above the threshold, best on top. Where the hold leaves
        the choice free, a reduced vocabulary's `kept_mask` (0 kept, -inf cut) drops the other tokens."""
        parent = self.path_search[-1] if self.path_search else 0.0
        search = logprobs
        allowed = hold.allowed(self.path) if hold is not None else None
        if allowed is None and kept_mask is not None:
            search = logprobs + kept_mask
        elif allowed is not None:
            index = torch.tensor(allowed)
            search = torch.full_like(logprobs, -math.inf)
            search[index] = logprobs[index] - torch.logsumexp(logprobs[index], dim=0)
        tokens = (search >= math.log(self.config.min_prob) - parent).nonzero()[:, 0].tolist()
        children = [(t, float(search[t]), float(logprobs[t])) for t in tokens]
        self.stack += reversed(ranked_children(children, len(self.path), parent, self.config.min_prob))

    def next_branch(self) -> Branch | None:
        """The next branch that needs the model, after recording the answers that end on the way;
        None when this prompt's search is over."""
        while self.stack and len(self.found) < self.config.max_candidates:
            if self.explored >= self.config.max_explored_tokens:
                return None
            branch = self.stack.pop()
            del self.path[branch.depth:], self.path_logprobs[branch.depth:], self.path_search[branch.depth:]
            del self.path_columns[branch.depth:]
            if branch.token == self.eos:
                tokens = (*self.path, branch.token)
                self.found.append(Found(tokens, sum(self.path_logprobs) + branch.logprob, branch.search_logprob))
                continue
            if branch.depth + 1 >= self.limit:  # no room left for the end token: not an answer
                continue
            self.path.append(branch.token)
            self.path_logprobs.append(branch.logprob)
            self.path_search.append(branch.search_logprob)
            self.explored += 1
            return branch
        return None


@torch.no_grad()
def search_batch(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, limits: list[int],
                 config: SearchConfig, eos: int, hold: ShapeHold | None = None,
                 kept_mask: torch.Tensor | None = None) -> list[list[Found]]:
    """Depth-first search after each left-padded prompt of a batch; per prompt, its answers in the
    order found (the greedy answer first when it is above the threshold). `limits` caps each
    answer's tokens, the end token included."""
    from transformers import DynamicCache

    device = input_ids.device
    cache = DynamicCache()
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                   past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
    prompt_lengths = attention_mask.sum(-1).tolist()
    searches = [_PromptSearch(limit, config, eos) for limit in limits]
    for search, row_logits in zip(searches, torch.log_softmax(logits.float(), dim=-1), strict=True):
        search.expand(row_logits, hold, kept_mask)
    rows = list(range(len(limits)))  # which prompt each row of the cache belongs to
    width = attention_mask.shape[1]  # cache columns: the prompts, then one per step
    while True:
        branches = {row: searches[row].next_branch() for row in rows}
        keep = [index for index, row in enumerate(rows) if branches[row] is not None]
        if not keep:
            break
        if len(keep) < len(rows):
            cache.batch_select_indices(torch.tensor(keep, device=device))
            rows = [rows[i] for i in keep]
        # each row sees its prompt, the columns of its own path and the new column
        mask = torch.zeros((len(rows), width + 1), dtype=attention_mask.dtype, device=device)
        mask[:, :attention_mask.shape[1]] = attention_mask[rows]
        for index, row in enumerate(rows):
            mask[index, searches[row].path_columns] = 1
        mask[:, width] = 1
        tokens = torch.tensor([[branches[row].token] for row in rows], device=device)
        position = torch.tensor([[prompt_lengths[row] + branches[row].depth] for row in rows], device=device)
        logits = model(input_ids=tokens, attention_mask=mask, position_ids=position, past_key_values=cache,
                       use_cache=True).logits[:, -1]
        for row, row_logits in zip(rows, torch.log_softmax(logits.float(), dim=-1), strict=True):
            searches[row].path_columns.append(width)
            searches[row].expand(row_logits, hold, kept_mask)
        width += 1
    return [search.found for search in searches]
