"""Metrics of predictions against the truth and a report with a table and pictures (E1).

Per test input, over its N predictions: accuracy (share exactly right), correct_pixels (share
of cells right, 0 for a wrong shape), correct_size (share with the right shape), pass_n (any
right), vote_1 / vote_2 (right among the first 1 / 2 selected attempts), unanswered (share
with no parsable grid). Each is averaged over a task's test inputs, then over tasks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from arc24_lib.data import Dataset, Grid, task_path
from arc24_lib.selection import Attempts, group_records

METRICS = ("accuracy", "correct_pixels", "correct_size", "pass_n", "vote_1", "vote_2", "unanswered")


def _same(a: Any, truth: Grid) -> bool:
    return a is not None and np.array_equal(np.asarray(a), truth)


def test_input_metrics(predictions: Sequence[Any], attempts: Sequence[Any], truth: Grid) -> dict[str, float]:
    """Metrics of one test input from its predicted grids (None = unparsable) and selected attempts."""
    n = len(predictions)
    answered = [np.asarray(p) for p in predictions if p is not None]
    right_size = [p for p in answered if p.shape == truth.shape]
    return {
        "accuracy": sum(np.array_equal(p, truth) for p in right_size) / n if n else 0.0,
        "correct_pixels": sum(float(np.mean(p == truth)) for p in right_size) / n if n else 0.0,
        "correct_size": len(right_size) / n if n else 0.0,
        "pass_n": float(any(np.array_equal(p, truth) for p in right_size)),
        "vote_1": float(_same(attempts[0] if attempts else None, truth)),
        "vote_2": float(any(_same(a, truth) for a in attempts[:2])),
        "unanswered": (n - len(answered)) / n if n else 1.0,
    }


test_input_metrics.__test__ = False  # a library function, not a pytest test


def evaluate(records: Iterable[dict[str, Any]], attempts: Attempts, dataset: Dataset) -> dict[str, Any]:
    """Per-task metrics (mean over test inputs) and their mean over tasks, for tasks with known outputs."""
    groups = group_records(records)
    per_task: dict[str, dict[str, float]] = {}
    for task in dataset:
        if not task.has_solutions:
            continue
        rows = []
        for test_index, example in enumerate(task.test):
            predictions = [r["grid"] for r in groups.get((task.task_id, test_index), [])]
            chosen = attempts.get(task.task_id, [[]] * len(task.test))[test_index]
            rows.append(test_input_metrics(predictions, chosen, example.output))
        per_task[task.task_id] = {m: float(np.mean([row[m] for row in rows])) for m in METRICS}
    summary = {m: float(np.mean([t[m] for t in per_task.values()])) if per_task else 0.0 for m in METRICS}
    return {"n_tasks": len(per_task), "summary": summary, "per_task": per_task}


def markdown_table(result: dict[str, Any], per_task: bool = True) -> str:
    """The metrics as a markdown table: one summary row, then one row per task."""
    header = "| task | " + " | ".join(METRICS) + " |\n|---|" + "---|" * len(METRICS)
    lines = [header, f"| **all {result['n_tasks']} tasks** | "
             + " | ".join(f"{result['summary'][m]:.3f}" for m in METRICS) + " |"]
    if per_task:
        for task_id, values in sorted(result["per_task"].items()):
            lines.append(f"| {task_id} | " + " | ".join(f"{values[m]:.3f}" for m in METRICS) + " |")
    return "\n".join(lines)


def write_report(result: dict[str, Any], attempts: Attempts, dataset: Dataset, output_dir: str | Path,
                 picture_task_ids: Sequence[str] | None = None) -> Path:
    """Write report.md (table) and one PNG of attempts vs truth per chosen task (default: all, up to 20)."""
    from arc24_lib.plotting import plot_predictions, save_figure

    output_dir = Path(output_dir)
    chosen = list(picture_task_ids) if picture_task_ids is not None else list(result["per_task"])[:20]
    lines = ["# Evaluation", "", markdown_table(result), "", "## Pictures", ""]
    for task_id in chosen:
        task = dataset[task_id]
        task_attempts = attempts.get(task_id, [[None, None]] * len(task.test))
        correct = [[_same(a, ex.output) for a in row] for row, ex in zip(task_attempts, task.test, strict=True)]
        figure = plot_predictions(task, task_attempts, correct)
        picture = save_figure(figure, task_path(output_dir / "pictures", task_id, ".png"))
        lines.append(f"![{task_id}](pictures/{picture.name})")
    path = output_dir / "report.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
