"""Worker processes of the competition run (K3): one per GPU, each in a process group of its own with the
engine processes it starts; one that dies is replaced while work is left, one still busy long after the
deadline is stopped. Also the faults that robustness drills inject (ARC24_INJECT_FAULTS)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)
FAULTS_VARIABLE = "ARC24_INJECT_FAULTS"  # robustness drills only, e.g. "ttt=id1,id2;inference=id3;crash=id4"
# ttt, inference: the stage fails for those tasks; crash: the worker is killed before the task; rewrite:
# killed while rewriting submission.json after the task; backend: worker numbers or "all" fail to start one
FAULT_STAGES = ("ttt", "inference", "crash", "rewrite", "backend")
POLL_S = 1.0


class InjectedFault(RuntimeError):
    """A failure asked for through ARC24_INJECT_FAULTS (robustness drills and the Kaggle rehearsal)."""


def faults(stage: str) -> set[str]:
    """The task ids (or worker numbers) ARC24_INJECT_FAULTS names for `stage`."""
    text = os.environ.get(FAULTS_VARIABLE, "")
    parts = dict(part.split("=", 1) for part in text.split(";") if "=" in part)
    unknown = set(parts) - set(FAULT_STAGES)
    if unknown:
        raise ValueError(f"{FAULTS_VARIABLE} names {sorted(unknown)}; stages are {', '.join(FAULT_STAGES)}")
    return set(filter(None, parts.get(stage, "").split(",")))


def crash(reason: str) -> None:
    """Kill this process with SIGKILL, as the out-of-memory killer does (injected faults)."""
    logger.error("%s (SIGKILL, as the out-of-memory killer)", reason)
    os.kill(os.getpid(), signal.SIGKILL)


def log_failure(what: str, error: Exception) -> None:
    """An injected fault in one line; anything else with its traceback, to be found and fixed."""
    if isinstance(error, InjectedFault):
        logger.error("%s: %s", what, error)
    else:
        logger.exception("%s: %s: %s", what, type(error).__name__, error)


def log_to(path: str | Path) -> None:
    """Send the library's log records to `path` too (once per process)."""
    root = logging.getLogger("arc24_lib")
    if any(isinstance(h, logging.FileHandler) and h.baseFilename == str(Path(path).resolve()) for h in root.handlers):
        return
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(processName)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _worker_process(target: Callable[..., Any], worker: int, args: tuple, log_path: str, gpus: int) -> None:
    os.setpgid(0, 0)  # a group of its own, with the engine processes it starts: killed together when it dies
    if gpus:  # one GPU per worker, set before torch is imported in this process
        os.environ["CUDA_VISIBLE_DEVICES"] = str(worker % gpus)
    log_to(log_path)
    try:
        target(worker, *args)
    except Exception as error:
        log_failure(f"worker {worker} stopped", error)
        raise SystemExit(1) from None


def _exit_reason(exitcode: int) -> str:
    return f"signal {signal.Signals(-exitcode).name}" if exitcode < 0 else f"exit code {exitcode}"


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # nothing of it is left


def supervise(target: Callable[..., Any], args: tuple, n_workers: int, work_left: Callable[[], bool],
              stop_at: float, max_restarts: int, log_path: str | Path) -> list[dict[str, Any]]:
    """Run `target(worker, *args)` in `n_workers` spawned processes until all end. One that dies is replaced
    while `work_left()` (at most `max_restarts` times per worker); one still busy at `stop_at` (a
    `time.time()`) is killed. Returns one record per worker death."""
    context, gpus = multiprocessing.get_context("spawn"), visible_gpus()

    def start(worker: int) -> Any:
        process = context.Process(target=_worker_process, name=f"worker-{worker}",
                                  args=(target, worker, args, str(log_path), gpus))
        process.start()
        return process

    running, restarts, deaths = {i: start(i) for i in range(n_workers)}, dict.fromkeys(range(n_workers), 0), []
    while running:
        for worker, process in list(running.items()):
            process.join(timeout=POLL_S / len(running))
            if process.is_alive():
                if time.time() > stop_at:
                    logger.error("worker %d is still busy long after the deadline; stopping it", worker)
                    process.kill()
                continue
            del running[worker]
            _kill_group(process.pid)  # what it started (vLLM's engine core) would keep memory a replacement needs
            if process.exitcode == 0:
                continue
            deaths.append({"worker": worker, "exitcode": process.exitcode})
            logger.error("worker %d died (%s); the task it was on keeps its current answers", worker,
                         _exit_reason(process.exitcode))
            if restarts[worker] < max_restarts and work_left():
                restarts[worker] += 1
                logger.warning("worker %d restarted (%d of %d)", worker, restarts[worker], max_restarts)
                running[worker] = start(worker)
    return deaths
