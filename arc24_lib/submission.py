"""`submission.json`: write it (always valid), validate it against the challenges, combine two (E2).

Format: {task_id: [{"attempt_1": grid, "attempt_2": grid}, ... one per test input]}.
Fallback: where fewer than two grids were predicted, the missing attempts are NO_ANSWER
(`[[0]]`), a valid 1×1 grid that marks "no prediction"; `combine_submissions` treats it as a gap.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from arc24_lib.data import MAX_SIDE, N_COLORS, Dataset
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


def write_json_atomic(data: Any, path: str | Path) -> Path:
    """Write JSON through a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(handle, "w") as file:
        json.dump(data, file)
    os.replace(temporary, path)
    return path


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


def submission_attempts(submission: dict[str, list[dict[str, Any]]]) -> Attempts:
    """The grids of a submission as attempts, NO_ANSWER read back as None."""
    return {task_id: [[None if entry[key] == NO_ANSWER else entry[key] for key in ATTEMPT_KEYS] for entry in entries]
            for task_id, entries in submission.items()}


def combine_submissions(first: dict, second: dict, dataset: Dataset, mode: str = "fill_gaps") -> dict:
    """Combine two submissions into one valid submission.

    `first_attempts`: attempt_1 of each (the second's attempt_2 slot falls back to the first's
    attempt_2 when the second has nothing new). `fill_gaps`: keep the first, fill its
    NO_ANSWER attempts with the second's grids that are not already there.
    """
    if mode not in ("first_attempts", "fill_gaps"):
        raise ValueError(f"mode is {mode!r}; choose first_attempts or fill_gaps")
    a, b = submission_attempts(first), submission_attempts(second)
    combined: Attempts = {}
    for task in dataset:
        combined[task.task_id] = []
        for test_index in range(len(task.test)):
            mine = (a.get(task.task_id) or [[None, None]] * len(task.test))[test_index]
            theirs = (b.get(task.task_id) or [[None, None]] * len(task.test))[test_index]
            order = [mine[0], theirs[0], mine[1], theirs[1]] if mode == "first_attempts" else [*mine, *theirs]
            chosen: list[Any] = []
            for grid in order:
                if grid is not None and grid not in chosen:
                    chosen.append(grid)
            combined[task.task_id].append((chosen + [None, None])[:2])
    return build_submission(dataset, combined)
