"""Selecting two attempts per test input from many predictions: voting, or augmented scores (I3)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Attempts = dict[str, list[list[list[list[int]] | None]]]  # task id → per test input → attempts (grids or None)
GridKey = tuple[tuple[int, ...], ...]  # a grid in hashable form
Scores = dict[tuple[str, int], dict[GridKey, float]]  # (task id, test index) → grid → augmented score
# A later expert's best grid takes an attempt only where it holds this share of that expert's
# predictions. Replayed on five two-expert tiny-task bench runs (60 task solves possible),
# simply taking turns solved 43, this gate 44 (0.5 and 0.6: also 44), the all-frames expert
# alone 43: the own-frame expert is often sure of a wrong grid, so the gate gains little
EXPERT_MIN_VOTE_SHARE = 0.75


@dataclass(frozen=True)
class Candidate:
    """A distinct predicted grid with its votes."""

    grid: tuple[tuple[int, ...], ...]
    count: int
    mean_logprob: float

    def as_list(self) -> list[list[int]]:
        return [list(row) for row in self.grid]


def rank_candidates(records: Iterable[dict[str, Any]], scores: dict[GridKey, float] | None = None) -> list[Candidate]:
    """Identical grids grouped, ranked by count, then by mean log-probability (ties).

    With `scores` (augmented scoring), the scored grids come first, best score first, then the
    rest by count.
    """
    votes: dict[tuple, list[float]] = defaultdict(list)
    for record in records:
        if record.get("grid") is not None:
            logprob = record.get("cumulative_logprob")
            votes[tuple(map(tuple, record["grid"]))].append(float("-inf") if logprob is None else logprob)
    candidates = [Candidate(grid, len(logprobs), sum(logprobs) / len(logprobs)) for grid, logprobs in votes.items()]
    scores = scores or {}
    return sorted(candidates, key=lambda c: (c.grid not in scores, -scores.get(c.grid, 0.0), -c.count,
                                             -c.mean_logprob))


def group_records(records: Iterable[dict[str, Any]]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Prediction records grouped by (task id, test index)."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[record["task_id"], record["test_index"]].append(record)
    return groups


def interleave(*rankings: list[Candidate]) -> list[Candidate]:
    """Each ranking in turn gives its best grid not chosen yet: two rankers share the attempts."""
    chosen: dict[GridKey, Candidate] = {}
    queues = [list(ranking) for ranking in rankings]
    while any(queues):
        for queue in queues:
            while queue and queue[0].grid in chosen:
                queue.pop(0)
            if queue:
                candidate = queue.pop(0)
                chosen[candidate.grid] = candidate
    return list(chosen.values())


def ranking(group: list[dict[str, Any]], scores: dict[GridKey, float] | None = None) -> list[Candidate]:
    """One test input's candidates in attempt order. With `scores` (augmented scoring) they
    alternate: the best-scored grid, then the most-voted other one, and so on. Each ranker alone
    misses answers the other one finds (a small model's scores and its votes disagree)."""
    voted = rank_candidates(group)
    return interleave(rank_candidates(group, scores), voted) if scores else voted


def select_attempts(records: Iterable[dict[str, Any]], n_test_inputs: dict[str, int],
                    n_attempts: int = 2, scores: Scores | None = None) -> Attempts:
    """For every task and test input, the top `n_attempts` ranked grids (None where nothing was predicted).

    `n_test_inputs` maps each task id to its number of test inputs, so test inputs without
    any prediction are still listed. Grids are ranked by `ranking` (augmented scores and votes
    in turn where `scores` exist, else votes).
    """
    return select_attempts_of_experts([(records, scores)], n_test_inputs, n_attempts)


def _is_sure(ranked: list[Candidate], n_predictions: int, min_vote_share: float) -> bool:
    """Whether an expert's best grid holds at least `min_vote_share` of its predictions."""
    return bool(ranked) and ranked[0].count >= min_vote_share * n_predictions


def select_attempts_of_experts(experts: list[tuple[Iterable[dict[str, Any]], Scores | None]],
                               n_test_inputs: dict[str, int], n_attempts: int = 2,
                               min_vote_share: float = EXPERT_MIN_VOTE_SHARE) -> Attempts:
    """Attempts from several experts (records and scores of differently trained adapters), the
    first one the main expert. Their rankings take turns, so with two experts and two attempts
    each expert's best grid is an attempt; but a later expert takes its turns on a test input
    only where its best grid holds at least `min_vote_share` of its predictions there. Where it
    is less sure, its grids come after the main expert's."""
    groups = [(group_records(records), scores or {}) for records, scores in experts]
    attempts: Attempts = {}
    for task_id, count in n_test_inputs.items():
        attempts[task_id] = []
        for test_index in range(count):
            key = (task_id, test_index)
            (main, _), *others = [(ranking(by_input.get(key, []), scores.get(key)), len(by_input.get(key, [])))
                                  for by_input, scores in groups]
            sure: list[list[Candidate]] = []
            unsure: list[Candidate] = []
            for other, n in others:
                if _is_sure(other, n, min_vote_share):
                    sure.append(other)
                else:
                    unsure.extend(other)
            ranked = interleave(interleave(main, *sure) + unsure)[:n_attempts]  # one ranking: deduplicated
            grids: list[Any] = [candidate.as_list() for candidate in ranked]
            attempts[task_id].append(grids + [None] * (n_attempts - len(grids)))
    return attempts
