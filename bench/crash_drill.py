"""Crash drill: the competition run (`kaggle.run.run_submission`, the solve path of every task) on real tasks
with the embedded model, killed with SIGKILL again and again (during test-time training, AIRV, augmented
scoring, and midway through rewriting submission.json), resumed each time, then compared with an uninterrupted
run of the same settings.

Checked: the same predictions (grids and texts) and the same submission.json; no duplicate record in any
jsonl file; a reader polling submission.json throughout only ever finds valid JSON that validates; no stage
of a task runs again unless a kill cut that very stage. Writes `bench/results/crash_drill_<date>.json`.

    .venv/bin/python bench/crash_drill.py --kills 12
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from arc24_lib.data import Dataset, load_builtin, load_dataset, save_dataset
from arc24_lib.files import read_records, write_json_atomic
from arc24_lib.kaggle.workers import FAULTS_VARIABLE
from arc24_lib.models import resolve_model_path
from arc24_lib.partitions import subset_by_ids
from arc24_lib.submission import validate_submission

STAGES = ("ttt", "airv", "scoring", "rewrite")
# log lines that open each stage of a task (test_time, airv, scoring) and the injected kill of a rewrite
MARKERS = {"ttt": re.compile(r"task (\S+): test-time training starts"),
           "airv": re.compile(r"task (\S+): \d+ AIRV predictions to make"),
           "scoring": re.compile(r"task (\S+ test input \d+): scoring \d+ candidates"),
           "rewrite": re.compile(r"injected crash midway through rewriting submission.json after task (\S+)")}
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
PR_SET_CHILD_SUBREAPER = 36


def run_config(folder: Path, challenges: Path, args: argparse.Namespace) -> dict[str, Any]:
    """KaggleRunConfig values: one hf worker on this CPU, a fixed number of steps and predictions per task
    (the deadline is far), so that an uninterrupted run and a resumed one do the same work. The learning rate
    decays over whichever ends first, steps or the task's time budget; the generous step time of the plan
    keeps the clock's share of that (which differs between runs) below a percent."""
    return {"challenges_path": str(challenges), "submission_path": str(folder / "submission.json"),
            "work_dir": str(folder / "arc24"), "task_format": {"model_path": resolve_model_path("embedded")},
            "n_workers": 1, "deadline_s": 36000.0, "pace": {"seconds_per_step": 60.0, "seconds_per_answer_token": 0.1},
            "max_worker_restarts": 0,
            "test_time": {"max_steps": args.max_steps, "max_seq_len": 2048},
            "inference": {"backend": "hf", "predictions_per_test_input": args.predictions, "max_seq_len": 2048}}


def child(config_path: str) -> None:
    """One run of the competition path, as the drill launches it."""
    from arc24_lib.config import config_from_dict
    from arc24_lib.kaggle.run import KaggleRunConfig, run_submission

    summary = run_submission(config_from_dict(KaggleRunConfig, json.loads(Path(config_path).read_text())))
    print(json.dumps({"tasks_processed": summary["tasks_processed"], "seconds": summary["seconds"]}))


def descendants() -> list[int]:
    """Every live process below this one (orphans come back to it: it is a subreaper)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [os.getpid()]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def kill_all() -> int:
    """SIGKILL every descendant until none is left; returns how many were killed."""
    killed = 0
    while pids := descendants():
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.2)
        reap()
    return killed


def reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class SubmissionReader(threading.Thread):
    """Reads submission.json as often as it can and counts what it finds."""

    def __init__(self, path: Path, dataset: Dataset):
        super().__init__(daemon=True)
        self.path, self.dataset, self.stop = path, dataset, threading.Event()
        self.counts: Counter[str] = Counter()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                text = self.path.read_text()
            except FileNotFoundError:
                self.counts["absent"] += 1
                continue
            try:
                problems = validate_submission(json.loads(text), self.dataset)
                self.counts["valid" if not problems else "invalid"] += 1
            except json.JSONDecodeError:
                self.counts["not JSON"] += 1
            time.sleep(0.002)


def log_events(log: Path) -> list[tuple[float, str, str]]:
    """(time, stage, task id) of every stage opening (and injected rewrite kill) in the run log."""
    events = []
    for line in log.read_text().splitlines() if log.exists() else []:
        stamp = STAMP.match(line)
        for stage, pattern in MARKERS.items():
            found = pattern.search(line)
            if stamp and found:
                seconds = time.mktime(time.strptime(stamp.group(1)[:19], "%Y-%m-%d %H:%M:%S"))
                events.append((seconds + int(stamp.group(1)[20:]) / 1000, stage, found.group(1)))
    return events


def launch(folder: Path, faults: str = "") -> subprocess.Popen:
    env = {**os.environ, FAULTS_VARIABLE: faults}
    return subprocess.Popen([sys.executable, __file__, "--child", str(folder / "config.json")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def prepare(folder: Path, challenges: Path, args: argparse.Namespace) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_config(folder, challenges, args), folder / "config.json", indent=2)


def stage_seconds(events: list[tuple[float, str, str]], end: float) -> dict[str, float]:
    """How long each stage lasted in a run (from its opening to the next event), summed over tasks."""
    seconds: Counter[str] = Counter()
    for (start, stage, _), (following, _, _) in zip(events, [*events[1:], (end, "", "")], strict=True):
        seconds[stage] += following - start
    return dict(seconds)


def drill(folder: Path, dataset: Dataset, durations: dict[str, float], args: argparse.Namespace) -> dict[str, Any]:
    """Kill the run again and again, aiming at each stage in turn, until `args.kills` kills; then let it end."""
    rng, log = random.Random(args.seed), folder / "arc24" / "run.log"
    kills: list[dict[str, Any]] = []
    launches, target_index = 0, 0
    while len(kills) < args.kills:
        target = STAGES[target_index % len(STAGES)]
        target_index += 1
        if target == "rewrite":  # milliseconds long: the worker kills itself between writing and renaming
            finished = {r["task_id"] for r in read_records(folder / "arc24" / "task_results.jsonl")}
            left = [task_id for task_id in dataset.task_ids if task_id not in finished]
            if not left:
                break
            process, launches = launch(folder, f"rewrite={left[0]}"), launches + 1
            process.wait()
            event = next((e for e in reversed(log_events(log)) if e[1] == "rewrite"), None)
            if event and event[2] == left[0]:
                kills.append({"stage": "rewrite", "task_id": left[0], "aimed_at": "rewrite"})
                print(f"kill {len(kills)}: midway through the rewrite after {left[0]}", flush=True)
            continue
        seen = len(log_events(log))
        process, launches = launch(folder), launches + 1
        while process.poll() is None:
            opened = [e for e in log_events(log)[seen:] if e[1] == target]
            if opened:
                break
            time.sleep(0.2)
        if process.poll() is not None:  # the run ended before the stage came: nothing of it is left to do
            continue
        time.sleep(rng.uniform(0.1, 0.9) * durations.get(target, 5.0))
        events = log_events(log)
        if process.poll() is None:
            kill_all()
            process.wait()
            stage, task_id = events[-1][1], events[-1][2]
            kills.append({"stage": stage, "task_id": task_id, "aimed_at": target})
            print(f"kill {len(kills)}: during {stage} of {task_id} (aimed at {target})", flush=True)
    process, launches = launch(folder), launches + 1
    process.wait()
    return {"kills": kills, "launches": launches}


def keyed(records: list[dict[str, Any]], fields: tuple[str, ...]) -> dict[tuple, dict[str, Any]]:
    return {tuple(json.dumps(r[f]) for f in fields): r for r in records}


def compare(reference: Path, drilled: Path, kills: list[dict[str, Any]]) -> dict[str, Any]:
    """The drilled run against the uninterrupted one, and the drilled run's own records."""
    work = {name: folder / "arc24" for name, folder in (("reference", reference), ("drill", drilled))}
    predictions = {name: read_records(path / "inference_0" / "predictions.jsonl") for name, path in work.items()}
    scores = {name: read_records(path / "inference_0" / "scores.jsonl") for name, path in work.items()}
    prediction_keys = ("task_id", "test_index", "augmentation_index")
    ours, theirs = (keyed(predictions[n], prediction_keys) for n in ("drill", "reference"))
    logprob_gap = max((abs((ours[k]["cumulative_logprob"] or 0) - (theirs[k]["cumulative_logprob"] or 0))
                       for k in ours.keys() & theirs.keys()), default=0.0)
    score_keys = ("task_id", "test_index", "grid")
    scored, scored_reference = keyed(scores["drill"], score_keys), keyed(scores["reference"], score_keys)
    results = read_records(work["drill"] / "task_results.jsonl")
    summaries = read_records(work["drill"] / "adapters" / "ttt_summary.jsonl")
    starts = Counter((stage, task_id) for _, stage, task_id in log_events(work["drill"] / "run.log")
                     if stage != "rewrite")
    cut = Counter((k["stage"], k["task_id"]) for k in kills if k["stage"] != "rewrite")
    return {
        "predictions": len(predictions["drill"]), "predictions_reference": len(predictions["reference"]),
        "same_prediction_keys": ours.keys() == theirs.keys(),
        "same_grids": all(ours[k]["grid"] == theirs[k]["grid"] for k in ours.keys() & theirs.keys()),
        "same_texts": all(ours[k]["text"] == theirs[k]["text"] for k in ours.keys() & theirs.keys()),
        "max_logprob_difference": logprob_gap,
        "same_scored_grids": scored.keys() == scored_reference.keys(),
        "max_score_difference": max((abs(scored[k]["score"] - scored_reference[k]["score"])
                                     for k in scored.keys() & scored_reference.keys()), default=0.0),
        "same_submission": json.loads((drilled / "submission.json").read_text())
        == json.loads((reference / "submission.json").read_text()),
        "duplicate_predictions": len(predictions["drill"]) - len(ours),
        "duplicate_scores": len(scores["drill"]) - len(scored),
        "duplicate_task_results": len(results) - len({r["task_id"] for r in results}),
        "duplicate_ttt_summaries": len(summaries) - len({r["task_id"] for r in summaries}),
        "stage_starts": {f"{stage} {task}": count for (stage, task), count in sorted(starts.items())},
        "stages_run_again_without_a_kill": {f"{stage} {task}": count for (stage, task), count in starts.items()
                                            if count > 1 + cut[stage, task]},
        "leftover_temporaries": [p.name for p in drilled.glob("submission.json*.tmp")],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--task_ids", nargs="+", default=["a85d4709", "25ff71a9", "3618c87e"],
                        help="ARC-AGI-1 training tasks (the evaluation set is kept for measurement)")
    parser.add_argument("--max_steps", type=int, default=16)
    parser.add_argument("--predictions", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", default="outputs/crash_drill")
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "cannot become a subreaper: killed runs would leave orphans")
    root = Path(args.output_dir)
    dataset = subset_by_ids(load_builtin("arc-agi-1/training"), args.task_ids).without_solutions("drill")
    challenges = save_dataset(dataset, root / "input" / "drill_challenges.json", with_solutions=False)
    dataset = load_dataset(challenges)
    reference, drilled = root / "reference", root / "drill"
    for folder in (reference, drilled):
        prepare(folder, challenges, args)
    started = time.time()
    if not (reference / "arc24" / "task_results.jsonl").exists():
        launch(reference).wait()
    reference_events = log_events(reference / "arc24" / "run.log")
    reference_s = time.time() - started
    durations = stage_seconds(reference_events, (reference / "arc24" / "run.log").stat().st_mtime)
    durations = {stage: seconds / len(dataset) for stage, seconds in durations.items()}
    print(f"uninterrupted run: {reference_s:.0f} s; seconds per task by stage: "
          f"{ {k: round(v, 1) for k, v in durations.items()} }", flush=True)
    reader = SubmissionReader(drilled / "submission.json", dataset)
    reader.start()
    started = time.time()
    outcome = drill(drilled, dataset, durations, args)
    drill_s = time.time() - started
    reader.stop.set()
    reader.join()
    result = {"date": date.today().isoformat(), "task_ids": args.task_ids, "max_steps": args.max_steps,
              "predictions_per_test_input": args.predictions, "reference_seconds": round(reference_s),
              "drill_seconds": round(drill_s), "launches": outcome["launches"], "kills": outcome["kills"],
              "kills_by_stage": dict(Counter(k["stage"] for k in outcome["kills"])),
              "submission_reads": dict(reader.counts), **compare(reference, drilled, outcome["kills"])}
    path = write_json_atomic(result, Path(f"bench/results/crash_drill_{result['date']}.json"), indent=2)
    print(json.dumps({k: v for k, v in result.items() if k not in ("kills", "stage_starts")}, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
