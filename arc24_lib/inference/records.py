"""What inference reads and writes: jsonl files of predictions, augmented scores and failures (one
JSON record per line, written through `files.JsonlWriter`, so a rerun keeps everything finished), and
where each task's adapter is."""

from __future__ import annotations

import logging
from pathlib import Path

from arc24_lib.data import task_path
from arc24_lib.files import JsonlWriter, read_records
from arc24_lib.selection import Scores

logger = logging.getLogger(__name__)
PREDICTIONS_FILE = "predictions.jsonl"
SCORES_FILE = "scores.jsonl"
FAILURES_FILE = "failures.jsonl"


def read_scores(paths: list[Path] | Path) -> Scores:
    """Scores from scores.jsonl files: (task id, test index) → grid → mean log-probability."""
    scores: Scores = {}
    for path in [paths] if isinstance(paths, Path) else paths:
        for record in read_records(path):
            key = (record["task_id"], record["test_index"])
            scores.setdefault(key, {})[tuple(map(tuple, record["grid"]))] = record["score"]
    return scores


def record_failure(output_dir: str | Path, task_id: str, error: Exception) -> None:
    """Record that a task failed in `<output_dir>/failures.jsonl` (and the log)."""
    logger.error("inference failed for task %s: %s: %s", task_id, type(error).__name__, error)
    with JsonlWriter(Path(output_dir) / FAILURES_FILE) as writer:
        writer.write([{"task_id": task_id, "error": f"{type(error).__name__}: {error}"}])


def adapter_for(task_id: str, adapters_dir: str | None, adapter_path: str | None) -> str | None:
    """The task's own adapter in `adapters_dir` where there is one, else `adapter_path` (None: the base model)."""
    if adapters_dir:
        folder = task_path(adapters_dir, task_id)
        if (folder / "adapter_config.json").exists():
            return str(folder)
        logger.warning("no adapter for task %s in %s; using %s", task_id, adapters_dir,
                       adapter_path or "the base model")
    return adapter_path
