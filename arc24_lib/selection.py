"""Selecting two attempts per test input from many predictions: augmented scores, else votes (I3)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

N_ATTEMPTS = 2  # attempts per test input the competitions score

Attempts = dict[str, list[list[list[list[int]] | None]]]  # task id → per test input → attempts (grids or None)
GridKey = tuple[tuple[int, ...], ...]  # a grid in hashable form
Scores = dict[tuple[str, int], dict[GridKey, float]]  # (task id, test index) → grid → augmented score


@dataclass(frozen=True)
class Candidate:
    """A distinct predicted grid with its votes and their mean log-probability per token."""

    grid: tuple[tuple[int, ...], ...]
    count: int
    logprob_per_token: float

    def as_list(self) -> list[list[int]]:
        return [list(row) for row in self.grid]


def _logprob_per_token(record: dict[str, Any]) -> float:
    """A prediction's cumulative log-probability over its number of tokens; -inf where either is unknown."""
    logprob, n_tokens = record.get("cumulative_logprob"), record.get("n_tokens")
    return float("-inf") if logprob is None or not n_tokens else logprob / n_tokens


def rank_candidates(records: Iterable[dict[str, Any]], scores: dict[GridKey, float] | None = None) -> list[Candidate]:
    """Identical grids grouped, ranked by count; ties broken by the mean log-probability per token
    (as the 2024 reference does), not per answer, which would favour small grids for their few tokens.

    With `scores` (augmented scoring), the scored grids come first, best score first, then the
    rest by count. A score is a product of experts: the grid's log-probability under each
    augmented prompt, averaged over the prompts that fit. On fixed candidates of the 60 smallest
    training tasks, scores alone submitted the right grid more often than scores and votes in turn
    (bench/selection.py, issue 34).
    """
    votes: dict[tuple, list[float]] = defaultdict(list)
    for record in records:
        if record.get("grid") is not None:
            votes[tuple(map(tuple, record["grid"]))].append(_logprob_per_token(record))
    candidates = [Candidate(grid, len(logprobs), sum(logprobs) / len(logprobs)) for grid, logprobs in votes.items()]
    scores = scores or {}
    return sorted(candidates, key=lambda c: (c.grid not in scores, -scores.get(c.grid, 0.0), -c.count,
                                             -c.logprob_per_token))


def group_records(records: Iterable[dict[str, Any]]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Prediction records grouped by (task id, test index)."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[record["task_id"], record["test_index"]].append(record)
    return groups


def select_attempts(records: Iterable[dict[str, Any]], n_test_inputs: dict[str, int],
                    n_attempts: int = N_ATTEMPTS, scores: Scores | None = None) -> Attempts:
    """For every task and test input, the top `n_attempts` ranked grids (None where nothing was predicted).

    `n_test_inputs` maps each task id to its number of test inputs, so test inputs without
    any prediction are still listed. Grids are ranked by `rank_candidates` (augmented scores
    where `scores` exist, else votes).
    """
    groups, scores = group_records(records), scores or {}
    attempts: Attempts = {}
    for task_id, count in n_test_inputs.items():
        attempts[task_id] = []
        for test_index in range(count):
            key = (task_id, test_index)
            grids: list[Any] = [c.as_list() for c in rank_candidates(groups.get(key, []), scores.get(key))[:n_attempts]]
            attempts[task_id].append(grids + [None] * (n_attempts - len(grids)))
    return attempts
