"""What inference reads and writes: jsonl files of predictions, augmented scores and failures (one
JSON record per line, flushed as written; a reader skips a last line that a crash cut short, so a
rerun keeps everything finished), and where each task's adapter is."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from arc24_lib.selection import Scores

logger = logging.getLogger(__name__)
PREDICTIONS_FILE = "predictions.jsonl"
SCORES_FILE = "scores.jsonl"
FAILURES_FILE = "failures.jsonl"


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The records of a jsonl file (none where it does not exist); a line cut short by a crash is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            logger.warning("ignoring a truncated line in %s", path)
    return records


def read_scores(paths: list[Path] | Path) -> Scores:
    """Scores from scores.jsonl files: (task id, test index) → grid → mean log-probability."""
    scores: Scores = {}
    for path in [paths] if isinstance(paths, Path) else paths:
        for record in read_records(path):
            key = (record["task_id"], record["test_index"])
            scores.setdefault(key, {})[tuple(map(tuple, record["grid"]))] = record["score"]
    return scores


class JsonlWriter:
    """Appends records and flushes them to disk at once, so a killed run loses nothing written."""

    def __init__(self, path: str | Path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            with open(path, "a") as file:  # a crash cut the last line: start a fresh one
                file.write("\n")
        self.file = open(path, "a")

    def write(self, records: list[dict[str, Any]]) -> None:
        self.file.write("".join(json.dumps(record) + "\n" for record in records))
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def record_failure(output_dir: str | Path, task_id: str, error: Exception) -> None:
    """Record that a task failed in `<output_dir>/failures.jsonl` (and the log)."""
    logger.error("inference failed for task %s: %s: %s", task_id, type(error).__name__, error)
    with JsonlWriter(Path(output_dir) / FAILURES_FILE) as writer:
        writer.write([{"task_id": task_id, "error": f"{type(error).__name__}: {error}"}])


def adapter_for(task_id: str, adapters_dir: str | None, adapter_path: str | None) -> str | None:
    """The task's own adapter in `adapters_dir` where there is one, else `adapter_path` (None: the base model)."""
    if adapters_dir:
        folder = Path(adapters_dir) / task_id
        if (folder / "adapter_config.json").exists():
            return str(folder)
        logger.warning("no adapter for task %s in %s; using %s", task_id, adapters_dir,
                       adapter_path or "the base model")
    return adapter_path
