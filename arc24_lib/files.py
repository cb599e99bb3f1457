"""Files that a crash (SIGKILL, the out-of-memory killer, a lost machine) cannot leave half-written: JSON
replaced through a rename, jsonl appended a batch of records at a time and read back without a line that a
crash cut short. Every result that took minutes to compute goes through these."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def write_json_atomic(data: Any, path: str | Path, before_replace: Callable[[], None] | None = None,
                      **dump_options: Any) -> Path:
    """Write JSON to a temporary file beside `path`, flush it to disk, then rename it over `path`: a
    reader sees the old file or the new one, never a part. `before_replace` runs between the two
    (robustness drills kill the process there)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as file:
            json.dump(data, file, **dump_options)
            file.flush()
            os.fsync(file.fileno())
        if before_replace:
            before_replace()
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def remove_leftovers(path: str | Path) -> None:
    """Delete the temporary files that writers of `path` killed midway left beside it (`write_json_atomic`);
    call it where no writer can be at work."""
    path = Path(path)
    for leftover in path.parent.glob(f"{path.name}*.tmp"):
        leftover.unlink(missing_ok=True)


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


class JsonlWriter:
    """Appends records to a jsonl file, each batch in one write and flushed to disk at once: a killed
    run keeps every batch written before, whole, and loses at most the one being written."""

    def __init__(self, path: str | Path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if os.fstat(self.fd).st_size and not path.read_bytes().endswith(b"\n"):
            os.write(self.fd, b"\n")  # a crash cut the last line: start a fresh one

    def write(self, records: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(record) + "\n" for record in records).encode()
        while data:  # one write() for a regular file, in practice
            data = data[os.write(self.fd, data):]
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
