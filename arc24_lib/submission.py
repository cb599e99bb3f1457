"""`submission.json`: write it (always valid), validate it against the challenges, combine two (E2).

Format: {task_id: [{"attempt_1": grid, "attempt_2": grid}, ... one per test input]}.
Inside the library an attempt without a grid is None; only the written file holds NO_ANSWER
(`[[0]]`) in its place, since the format needs a grid there. `[[0]]` is also a real ARC answer
(ARC-AGI-1 training 239be575), so a file read back cannot tell the two apart: `submission_attempts`
makes the caller say which it means.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from arc24_lib.data import MAX_SIDE, N_COLORS, Dataset
from arc24_lib.files import write_json_atomic
from arc24_lib.selection import Attempts

NO_ANSWER: list[list[int]] = [[0]]
ATTEMPT_KEYS = ("attempt_1", "attempt_2")


def _is_grid(value: Any) -> bool:
    return (isinstance(value, list) and 1 <= len(value) <= MAX_SIDE
            and all(isinstance(row, list) and 1 <= len(row) <= MAX_SIDE and len(row) == len(value[0])
                    and all(type(cell) is int and 0 <= cell < N_COLORS for cell in row) for row in value))


def build_submission(dataset: Dataset, attempts: Attempts | None = None) -> dict[str, list[dict[str, Any]]]:
    """A complete submission: every task and test input of `dataset`, invalid or missing grids → NO_ANSWER."""
    attempts = attempts or {}
    submission = {}
    for task in dataset:
        entries = []
        for test_index in range(len(task.test)):
            found = attempts.get(task.task_id, [])
            grids = [g for g in (found[test_index] if test_index < len(found) else []) if _is_grid(g)]
            grids += [NO_ANSWER] * (len(ATTEMPT_KEYS) - len(grids))
            entries.append(dict(zip(ATTEMPT_KEYS, grids, strict=False)))
        submission[task.task_id] = entries
    return submission


def write_submission(dataset: Dataset, attempts: Attempts | None, path: str | Path) -> Path:
    """Build, write atomically, read back and validate a submission; raises if it is not valid."""
    path = write_json_atomic(build_submission(dataset, attempts), path)
    problems = validate_submission(json.loads(Path(path).read_text()), dataset)
    if problems:
        raise ValueError(f"{path} is not a valid submission: {problems[:5]}")
    return path


def validate_submission(submission: Any, dataset: Dataset) -> list[str]:
    """Problems of a submission against the challenges: missing tasks or test inputs, bad grids."""
    if not isinstance(submission, dict):
        return ["the submission must be a JSON object mapping task ids to lists of attempts"]
    problems = [f"task {task_id}: not in the challenges" for task_id in submission if task_id not in dataset]
    for task in dataset:
        entries = submission.get(task.task_id)
        if entries is None:
            problems.append(f"task {task.task_id}: missing")
            continue
        if not isinstance(entries, list) or len(entries) != len(task.test):
            problems.append(f"task {task.task_id}: needs a list of {len(task.test)} test-input entries")
            continue
        for test_index, entry in enumerate(entries):
            for key in ATTEMPT_KEYS:
                if not isinstance(entry, dict) or key not in entry:
                    problems.append(f"task {task.task_id} test input {test_index}: missing {key}")
                elif not _is_grid(entry[key]):
                    problems.append(f"task {task.task_id} test input {test_index}: {key} is not a valid grid "
                                    "(1-30 rows of equal length, integers 0-9)")
    return problems


def submission_attempts(submission: dict[str, list[dict[str, Any]]], zero_is_gap: bool) -> Attempts:
    """The grids of a submission file as attempts. With `zero_is_gap`, every `[[0]]` reads as None
    (the writer's placeholder for no answer, as ours and most are); without it, as the 1×1 answer."""
    return {task_id: [[None if zero_is_gap and entry[key] == NO_ANSWER else entry[key] for key in ATTEMPT_KEYS]
                      for entry in entries]
            for task_id, entries in submission.items()}


# The order in which each mode takes the two sides' attempts, as (side, attempt index): the first two
# grids not taken yet become attempt_1 and attempt_2. `first_attempts` (the 2024 reference's rule): each
# side's best guess, then the second side's attempt_2, then the first's. `fill_gaps`: the first side whole,
# its gaps filled with the second's grids.
COMBINE_ORDER = {"first_attempts": ((0, 0), (1, 0), (1, 1), (0, 1)),
                 "fill_gaps": ((0, 0), (0, 1), (1, 0), (1, 1))}


def combine_attempts(first: Attempts, second: Attempts, dataset: Dataset, mode: str = "fill_gaps") -> Attempts:
    """Two attempts per test input of `dataset` from two sets of attempts, in `COMBINE_ORDER[mode]`;
    None is a gap, every grid (`[[0]]` too) an answer."""
    if mode not in COMBINE_ORDER:
        raise ValueError(f"mode is {mode!r}; choose {' or '.join(COMBINE_ORDER)}")
    combined: Attempts = {}
    for task in dataset:
        sides = [attempts.get(task.task_id) or [] for attempts in (first, second)]
        combined[task.task_id] = []
        for test_index in range(len(task.test)):
            chosen: list[Any] = []
            for side, attempt in COMBINE_ORDER[mode]:
                found = sides[side][test_index] if test_index < len(sides[side]) else []
                grid = found[attempt] if attempt < len(found) else None
                if grid is not None and grid not in chosen:
                    chosen.append(grid)
            combined[task.task_id].append((chosen + [None, None])[:2])
    return combined


def combine_submissions(first: dict, second: dict, dataset: Dataset, mode: str, zero_is_gap: bool) -> dict:
    """Two submission files combined into one valid submission (`combine_attempts`); `zero_is_gap`
    says how both files' `[[0]]` grids read (`submission_attempts`)."""
    return build_submission(dataset, combine_attempts(submission_attempts(first, zero_is_gap),
                                                      submission_attempts(second, zero_is_gap), dataset, mode))
