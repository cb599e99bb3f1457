"""The competition run: a valid submission first, then per task test-time fine-tuning and AIRV under a
per-task cap and a global deadline, one worker per GPU, rewriting submission.json after every task (K3)."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import queue
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from arc24_lib.data import Dataset, load_dataset
from arc24_lib.encoders import DEFAULT_ENCODER
from arc24_lib.prompting import DEFAULT_PROMPT_VERSION

logger = logging.getLogger(__name__)
RESULTS_FILE = "task_results.jsonl"
FAULTS_VARIABLE = "ARC24_INJECT_FAULTS"  # e.g. "ttt=id1,id2;inference=id3": robustness drills only


@dataclass
class KaggleRunConfig:
    """Where the competition's files are, what to run, and how much time there is."""

    # --- paths (Kaggle's by default) ---
    challenges_path: str = field(default="/kaggle/input/arc-prize-2025/arc-agi_test_challenges.json",
                                 metadata={"help": "the competition's test challenges"})
    submission_path: str = field(default="/kaggle/working/submission.json", metadata={"help": "what is scored"})
    work_dir: str = field(default="/kaggle/working/arc24", metadata={"help": "adapters, predictions, log"})
    model_path: str = field(default="/kaggle/input/arc24-model", metadata={"help": "merged model folder"})
    adapter_path: str | None = field(default=None, metadata={"help": "adapter to start test-time training from"})
    second_submission_path: str | None = field(default=None, metadata={"help": "a submission to combine with"})
    combine_mode: str = field(default="fill_gaps", metadata={"help": "fill_gaps or first_attempts"})
    # --- time ---
    deadline_s: float = field(default=12 * 3600 - 45 * 60, metadata={"help": "whole run, from its start"})
    per_task_cap_s: float | None = field(default=None, metadata={"help": "cap per task; None: planned"})
    seconds_per_step: float = field(default=0.6, metadata={"help": "measured training step time"})
    seconds_per_prediction: float = field(default=0.4, metadata={"help": "measured time per prediction"})
    seconds_per_score: float = field(default=0.05, metadata={
        "help": "measured time to score one candidate under one augmented prompt (augmented scoring)"})
    n_workers: int | None = field(default=None, metadata={"help": "None: one per visible GPU (1 on CPU)"})
    # --- model and prompts ---
    backend: str = field(default="vllm", metadata={"help": "vllm, or hf (used when vllm is missing)"})
    gpu_memory_utilization: float = field(default=0.4, metadata={
        "help": "vllm's share of GPU memory; training in the same process needs the rest"})
    grid_encoder: str = field(default=DEFAULT_ENCODER, metadata={"help": "grid encoder string"})
    prompt_version: str = field(default=DEFAULT_PROMPT_VERSION, metadata={"help": "prompt version"})
    max_seq_len: int = field(default=8192, metadata={"help": "tokens of prompt + answer"})
    max_steps: int = field(default=300, metadata={"help": "most test-time training steps per task"})
    learning_rate: float = field(default=1e-4, metadata={"help": "test-time training learning rate"})
    lora_r: int = field(default=32, metadata={"help": "LoRA rank of new adapters"})
    lora_layers: int | None = field(default=None, metadata={"help": "adapters on the last N layers; None: all"})
    early_stop_loss: float | None = field(default=None, metadata={"help": "stop a task's training below this loss"})
    predictions_per_test_input: int = field(default=32, metadata={"help": "most AIRV predictions"})
    augmented_scoring: bool = field(default=True, metadata={
        "help": "rank candidates by their log-probability under every augmented prompt"})
    scored_candidates: int = field(default=8, metadata={"help": "most-voted candidates scored per test input"})

    @property
    def seconds_per_planned_prediction(self) -> float:
        """A prediction and, with augmented scoring, its prompt's scoring of every candidate."""
        return self.seconds_per_prediction + self.augmented_scoring * self.scored_candidates * self.seconds_per_score


def _faults(stage: str) -> set[str]:
    text = os.environ.get(FAULTS_VARIABLE, "")
    parts = dict(part.split("=", 1) for part in text.split(";") if "=" in part)
    return set(filter(None, parts.get(stage, "").split(",")))


def _visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def choose_backend(requested: str) -> str:
    """The backend to use: vllm only where it imports, else hf (logged)."""
    if requested != "vllm":
        return requested
    try:
        import vllm  # noqa: F401
    except ImportError:
        logger.warning("vllm is not installed (no wheelhouse?); falling back to the hf backend")
        return "hf"
    return "vllm"


def fallback_submission(config: KaggleRunConfig) -> Dataset:
    """Load the challenges (skipping bad tasks) and write a valid all-fallback submission at once."""
    from arc24_lib.submission import ATTEMPT_KEYS, NO_ANSWER, build_submission, write_json_atomic

    dataset = load_dataset(config.challenges_path, skip_bad=True)
    submission = build_submission(dataset)
    raw = json.loads(Path(config.challenges_path).read_text())
    for rejected in dataset.rejected:  # a task we cannot read still needs entries
        tests = raw.get(rejected.task_id, {}).get("test") if isinstance(raw.get(rejected.task_id), dict) else None
        count = len(tests) if isinstance(tests, list) and tests else 1
        submission[rejected.task_id] = [dict.fromkeys(ATTEMPT_KEYS, NO_ANSWER) for _ in range(count)]
        logger.error("task %s cannot be read (%s); it gets fallback answers", rejected.task_id, rejected.problem)
    write_json_atomic(submission, config.submission_path)
    logger.info("fallback submission for %d tasks written to %s", len(submission), config.submission_path)
    return dataset


def rewrite_submission(config: KaggleRunConfig, dataset: Dataset) -> dict[str, Any]:
    """Vote over every worker's predictions so far and replace submission.json atomically (under a lock)."""
    from arc24_lib.inference.airv import read_predictions
    from arc24_lib.inference.scoring import SCORES_FILE, read_scores
    from arc24_lib.selection import select_attempts
    from arc24_lib.submission import build_submission, combine_submissions, write_json_atomic

    work = Path(config.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "submission.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        records = [r for path in sorted(work.glob("inference_*/predictions.jsonl")) for r in read_predictions(path)]
        scores = read_scores(sorted(work.glob(f"inference_*/{SCORES_FILE}")))
        attempts = select_attempts(records, {task.task_id: len(task.test) for task in dataset}, scores=scores)
        submission = build_submission(dataset, attempts)
        if config.second_submission_path and Path(config.second_submission_path).exists():
            second = json.loads(Path(config.second_submission_path).read_text())
            submission = combine_submissions(submission, second, dataset, config.combine_mode)
        existing = json.loads(Path(config.submission_path).read_text())
        existing.update(submission)  # keeps the fallback entries of unreadable tasks
        write_json_atomic(existing, config.submission_path)
    return existing


def _solve_one(task_id: str, dataset: Dataset, config: KaggleRunConfig, plan: Any, backend_name: str,
               backend: Any, worker: int, deadline: float) -> dict[str, Any]:
    """Test-time fine-tuning then AIRV for one task, each failure logged and survived."""
    from arc24_lib.inference.airv import InferenceConfig, run_airv
    from arc24_lib.test_time import TestTimeConfig, fine_tune_at_test_time

    task = dataset[task_id]
    single = Dataset(task_id, {task_id: task})
    inference_s = plan.predictions_per_test_input * len(task.test) * config.seconds_per_planned_prediction
    training_s = min(config.per_task_cap_s or plan.seconds_per_task, deadline - time.time()) - inference_s
    result: dict[str, Any] = {"task_id": task_id, "worker": worker}
    work = Path(config.work_dir)
    if plan.steps_per_task > 0 and training_s > 1:
        try:
            if task_id in _faults("ttt"):
                raise RuntimeError("injected test-time training fault")
            ttt = TestTimeConfig(model_path=config.model_path, adapter_path=config.adapter_path,
                                 output_dir=str(work / "adapters"), grid_encoder=config.grid_encoder,
                                 prompt_version=config.prompt_version, max_seq_len=config.max_seq_len,
                                 max_steps=plan.steps_per_task, learning_rate=config.learning_rate,
                                 lora_r=config.lora_r, lora_layers=config.lora_layers,
                                 early_stop_loss=config.early_stop_loss, time_budget_s=training_s)
            result["ttt"] = fine_tune_at_test_time(single, ttt)[0]["status"]
        except Exception as error:
            logger.error("task %s: test-time training failed: %s: %s", task_id, type(error).__name__, error)
            result["ttt"] = "failed"
    try:
        if task_id in _faults("inference"):
            raise RuntimeError("injected inference fault")
        inference = InferenceConfig(model_path=config.model_path, adapter_path=config.adapter_path,
                                    adapters_dir=str(work / "adapters"), backend=backend_name,
                                    output_dir=str(work / f"inference_{worker}"), grid_encoder=config.grid_encoder,
                                    prompt_version=config.prompt_version, max_seq_len=config.max_seq_len,
                                    predictions_per_test_input=plan.predictions_per_test_input,
                                    augmented_scoring=config.augmented_scoring,
                                    scored_candidates=config.scored_candidates)
        run_airv(single, inference, backend=backend)
        result["inference"] = "done"
    except Exception as error:
        logger.error("task %s: inference failed: %s: %s", task_id, type(error).__name__, error)
        result["inference"] = "failed"
    return result


def run_worker(worker: int, config: KaggleRunConfig, task_ids: Any, deadline: float, plan: Any) -> list[dict]:
    """Take tasks from `task_ids` (a queue or a list) until it is empty or the deadline is near."""
    from arc24_lib.inference.airv import InferenceConfig

    dataset = load_dataset(config.challenges_path, skip_bad=True)
    name = choose_backend(config.backend)
    backend = InferenceConfig(model_path=config.model_path, backend=name, max_seq_len=config.max_seq_len,
                              grid_encoder=config.grid_encoder,
                              gpu_memory_utilization=config.gpu_memory_utilization).build_backend()
    logger.info("worker %d: %s backend on %s", worker, name, config.model_path)
    results = []
    pending = queue.SimpleQueue() if isinstance(task_ids, list) else task_ids
    for task_id in task_ids if isinstance(task_ids, list) else []:
        pending.put(task_id)
    while True:
        try:
            task_id = pending.get_nowait()
        except queue.Empty:
            break
        if time.time() + plan.seconds_per_task * 0.25 > deadline:
            logger.warning("worker %d: deadline near; task %s and the rest keep their current answers", worker, task_id)
            break
        results.append(_solve_one(task_id, dataset, config, plan, name, backend, worker, deadline))
        rewrite_submission(config, dataset)
        with open(Path(config.work_dir) / RESULTS_FILE, "a") as file:
            file.write(json.dumps(results[-1]) + "\n")
        logger.info("worker %d: task %s %s", worker, task_id, results[-1])
    return results


def _spawned_worker(worker: int, config: KaggleRunConfig, task_ids: Any, deadline: float, plan: Any,
                    log_path: str) -> None:
    os.environ["CUDA_VISIBLE_DEVICES"] = str(worker)  # before torch is imported in this process
    _log_to(log_path)
    run_worker(worker, config, task_ids, deadline, plan)


def _log_to(path: str | Path) -> None:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(processName)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("arc24_lib").addHandler(handler)
    logging.getLogger("arc24_lib").setLevel(logging.INFO)


def run_submission(config: KaggleRunConfig) -> dict[str, Any]:
    """The whole competition run; returns a summary. submission.json is valid at every moment."""
    import multiprocessing

    from arc24_lib.planning import plan_budget

    start = time.time()
    deadline = start + config.deadline_s
    Path(config.work_dir).mkdir(parents=True, exist_ok=True)
    log_path = Path(config.work_dir) / "run.log"
    _log_to(log_path)
    dataset = fallback_submission(config)
    n_workers = config.n_workers or max(1, _visible_gpus())
    n_tests = sum(len(task.test) for task in dataset) / max(1, len(dataset))
    plan = plan_budget(max(1, len(dataset)), n_workers, config.deadline_s, config.seconds_per_step,
                       config.seconds_per_planned_prediction, test_inputs_per_task=n_tests, max_steps=config.max_steps,
                       max_predictions=config.predictions_per_test_input, startup_s=min(120.0, config.deadline_s / 10))
    if config.per_task_cap_s:
        plan = replace(plan, seconds_per_task=min(plan.seconds_per_task, config.per_task_cap_s))
    logger.info("plan for %d tasks on %d workers: %s", len(dataset), n_workers, plan)
    task_ids = dataset.task_ids
    if n_workers == 1:
        run_worker(0, config, task_ids, deadline, plan)
    else:
        context = multiprocessing.get_context("spawn")
        shared = context.Queue()
        for task_id in task_ids:
            shared.put(task_id)
        workers = [context.Process(target=_spawned_worker, args=(i, config, shared, deadline, plan, str(log_path)))
                   for i in range(n_workers)]
        for process in workers:
            process.start()
        for process in workers:
            process.join(timeout=max(1.0, deadline - time.time() + 60))
    submission = rewrite_submission(config, dataset)
    results_path = Path(config.work_dir) / RESULTS_FILE
    results = [json.loads(line) for line in results_path.read_text().splitlines()] if results_path.exists() else []
    summary = {"tasks": len(submission), "tasks_processed": len(results), "workers": n_workers,
               "plan": plan.__dict__, "seconds": round(time.time() - start, 1),
               "failed": [r["task_id"] for r in results if "failed" in (r.get("ttt"), r.get("inference"))]}
    logger.info("run finished: %s", summary)
    return summary


def install_offline(wheelhouse_dir: str | Path, package: str = "vllm") -> bool:
    """Install `package` from an attached wheelhouse when it is missing; False when it cannot be."""
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec(package) is not None:
        return True
    if not Path(wheelhouse_dir).is_dir():
        logger.warning("%s is missing and there is no wheelhouse at %s", package, wheelhouse_dir)
        return False
    command = [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(wheelhouse_dir), package]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        logger.error("offline install of %s failed:\n%s", package, completed.stderr[-2000:])
        return False
    return True
