"""The competition run: a valid submission first, then per task test-time fine-tuning and AIRV under a
per-task cap and a global deadline, one worker process per GPU, rewriting submission.json after every task (K3).

Workers are separate processes: one that dies (out of memory, a CUDA error) is replaced while tasks remain,
and the run still ends with a valid submission. A run that answered no task at all ends with `check_run`
raising, after the valid fallback file is written, so a dead run shows as a failure instead of a silent zero.
"""

from __future__ import annotations

import fcntl
import json
import logging
import multiprocessing
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from arc24_lib.config import config_from_dict
from arc24_lib.data import ARCDataError, Dataset, load_dataset, read_json
from arc24_lib.files import JsonlWriter, read_records, remove_leftovers, write_json_atomic
from arc24_lib.inference.airv import InferenceConfig
from arc24_lib.inference.records import SCORES_FILE, read_scores
from arc24_lib.kaggle.install import (
    COMPETITION,
    competition_challenges,
    fallback_entries,
    is_competition_rerun,
    stop_or_degrade,
)
from arc24_lib.kaggle.workers import (
    POLL_S,
    InjectedFault,
    crash,
    faults,
    log_failure,
    log_to,
    supervise,
    visible_gpus,
)
from arc24_lib.planning import Pace, plan_budget, planned_answer_tokens, task_budget_s
from arc24_lib.task_format import TaskFormat
from arc24_lib.test_time import TestTimeConfig

logger = logging.getLogger(__name__)
RESULTS_FILE = "task_results.jsonl"
SUMMARY_FILE = "summary.json"
RUN_MODES = ("auto", "full", "smoke")

# Where the competition run departs from the library's stage defaults, and why; every other setting is
# TaskFormat's, Pace's, TestTimeConfig's and InferenceConfig's own (tests/test_defaults.py checks that these are all)
KAGGLE_DIFFERENCES: dict[str, dict[str, Any]] = {
    # the model dataset the notebook attaches: merged, or a base model with an adapter/ subfolder that
    # test-time training starts from (adapter_path None: that adapter/, if any)
    "task_format": {"model_path": "/kaggle/input/arc24-model"},
    "test_time": {
        # the competition's ARC-AGI-2 tasks have grids up to 30x30; a GPU trains on such prompts in seconds
        "max_seq_len": 8192,
        # at most: the planner lowers it to fit the deadline, and each task's time budget ends training first
        "max_steps": 300,
    },
    # the time model on a GPU: estimates, not yet measured there (bench/gpu_check_hf.py is the measurement)
    "pace": {
        "seconds_per_step": 0.6,  # a LoRA step at the competition's longer prompts
        # 0.4 s a greedy prediction and 0.4 s scoring its 8 candidates, over the ~640 answer tokens planned per
        # test input of ARC-AGI-2 evaluation's tasks
        "seconds_per_answer_token": 0.00125,
        "startup_s": 120.0,  # the model loaded and vLLM's engine started (CUDA graphs captured)
    },
    "inference": {
        "backend": "vllm",  # the GPU engine: several times the hf backend's throughput; hf stays the CPU default
        "predictions_per_test_input": 32,  # at most: the planner lowers it to fit the deadline
        "gpu_memory_utilization": 0.4,  # not vLLM's 0.9: test-time training shares the GPU in the same worker
    },
}


def kaggle_task_format() -> TaskFormat:
    return config_from_dict(TaskFormat, KAGGLE_DIFFERENCES["task_format"])


def kaggle_test_time() -> TestTimeConfig:
    return config_from_dict(TestTimeConfig, KAGGLE_DIFFERENCES["test_time"])


def kaggle_pace() -> Pace:
    return config_from_dict(Pace, KAGGLE_DIFFERENCES["pace"])


def kaggle_inference() -> InferenceConfig:
    return config_from_dict(InferenceConfig, KAGGLE_DIFFERENCES["inference"])


@dataclass
class KaggleRunConfig:
    """Where the competition's files are, how much time there is, the task format and the two stages:
    TaskFormat, Pace, TestTimeConfig and InferenceConfig with the library's defaults but for KAGGLE_DIFFERENCES."""

    # --- the competition and paths (Kaggle's by default) ---
    competition: str = field(default=COMPETITION, metadata={
        "help": "the competition's Kaggle slug (ARC Prize 2026, ARC-AGI-2 track); its files are found under "
                "/kaggle/input"})
    challenges_path: str | None = field(default=None, metadata={
        "help": "the test challenges; None: the competition's arc-agi_test_challenges.json under /kaggle/input"})
    submission_path: str = field(default="/kaggle/working/submission.json", metadata={"help": "what is scored"})
    work_dir: str = field(default="/kaggle/working/arc24", metadata={"help": "adapters, predictions, log"})
    second_submission_path: str | None = field(default=None, metadata={"help": "a submission to combine with"})
    combine_mode: str = field(default="fill_gaps", metadata={"help": "fill_gaps or first_attempts"})
    second_zero_is_gap: bool = field(default=True, metadata={
        "help": "a [[0]] grid in the second submission is its placeholder for no answer (as in most files), "
                "not a real 1x1 answer; a file cannot tell the two apart"})
    # --- what kind of run ---
    run_mode: str = field(default="auto", metadata={
        "help": "full, smoke, or auto: full in Kaggle's competition rerun, smoke in a push run (the run on the "
                "public tasks that spends GPU quota)"})
    smoke_tasks: int = field(default=4, metadata={"help": "tasks a smoke run solves (the rest keep the fallback)"})
    smoke_deadline_s: float = field(default=1800.0, metadata={"help": "a smoke run's deadline"})
    expect_gpu: bool = field(default=True, metadata={
        "help": "the kernel runs on a GPU: a run without one stops (push) or is named degraded (rerun)"})
    # --- time ---
    deadline_s: float = field(default=40500.0, metadata={"help": "whole run, from its start (11 h 15 min of 12 h)"})
    per_task_cap_s: float | None = field(default=None, metadata={"help": "cap per task; None: planned"})
    pace: Pace = field(default_factory=kaggle_pace, metadata={
        "help": "the time model the plan and each task's inference reserve use (GPU estimates; each worker raises "
                "its reserve to the slowest task it measured)"})
    n_workers: int | None = field(default=None, metadata={"help": "None: one per visible GPU (1 on CPU)"})
    stop_grace_s: float = field(default=600.0, metadata={
        "help": "a worker still busy this long after the deadline is stopped; the deadline's margin to Kaggle's "
                "12 h must cover it"})
    max_worker_restarts: int = field(default=2, metadata={
        "help": "times a dead worker is replaced while tasks remain (the task it was on keeps its fallback)"})
    # --- the task format and the stages ---
    task_format: TaskFormat = field(default_factory=kaggle_task_format, metadata={
        "help": "the model (a merged folder, or a base model with an adapter/ subfolder that test-time training "
                "starts from where adapter_path is None), encoder, prompt and augmentations of both stages"})
    test_time: TestTimeConfig | None = field(default_factory=kaggle_test_time, metadata={
        "help": "test-time training per task (max_steps: the most the planner may plan); None: none. "
                "output_dir is the run's"})
    inference: InferenceConfig = field(default_factory=kaggle_inference, metadata={
        "help": "inference per task (predictions_per_test_input: the most the planner may plan; backend: vllm, "
                "or hf, used where vllm is missing or fails). Its folders are the run's"})

    def __post_init__(self) -> None:
        if self.run_mode not in RUN_MODES:
            raise ValueError(f"run_mode is {self.run_mode!r}; choose one of {', '.join(RUN_MODES)}")

    @property
    def challenges(self) -> str:
        """The challenges file: `challenges_path`, else the competition's under /kaggle/input."""
        return self.challenges_path or str(competition_challenges(self.competition))

    @property
    def smoke(self) -> bool:
        """Whether this run is a smoke run: a few tasks on a short deadline."""
        return self.run_mode == "smoke" or (self.run_mode == "auto" and not is_competition_rerun())

    @property
    def start_adapter(self) -> str | None:
        """The adapter test-time training starts from and inference falls back to."""
        from arc24_lib.models import model_adapter

        return self.task_format.adapter_path or model_adapter(self.task_format.model_path)

    def solve_config(self, plan: Any, backend: str, worker: int, budget_s: float | None) -> Any:
        """One task's `solve.SolveConfig` under `plan`, in the run's folders, with the worker's backend."""
        from arc24_lib.solve import SolveConfig

        adapters = str(Path(self.work_dir) / "adapters")
        # a task's own adapter where test-time training wrote one, else the one it starts from
        inference = replace(self.inference, adapters_dir=adapters if self.test_time is not None else None,
                            backend=backend, output_dir=str(Path(self.work_dir) / f"inference_{worker}"),
                            predictions_per_test_input=plan.predictions_per_test_input)
        test_time = None
        if self.test_time is not None and plan.steps_per_task > 0:
            test_time = replace(self.test_time, output_dir=adapters, max_steps=plan.steps_per_task)
        return SolveConfig(task_format=replace(self.task_format, adapter_path=self.start_adapter), test_time=test_time,
                           inference=inference, budget_s=budget_s, pace=self.pace)


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


def build_backend(config: KaggleRunConfig, worker: int) -> tuple[str, Any]:
    """The worker's backend and its name: the requested one, else hf where vllm is missing or fails to start."""
    broken = faults("backend")
    if "all" in broken or str(worker) in broken:
        raise InjectedFault(f"injected backend fault in worker {worker}")
    name = choose_backend(config.inference.backend)
    try:
        return name, replace(config.inference, backend=name).build_backend(config.task_format.model_path)
    except Exception as error:
        if name != "vllm":
            raise
        log_failure(f"worker {worker}: the vllm backend failed to start; falling back to the hf backend", error)
    return "hf", replace(config.inference, backend="hf").build_backend(config.task_format.model_path)


def fallback_submission(config: KaggleRunConfig) -> Dataset:
    """Load the challenges (skipping bad tasks) and write a valid submission at once: fallback answers, and
    the answers of a run this one resumes (predictions already in the work folder)."""
    dataset = load_dataset(config.challenges, skip_bad=True)
    for rejected in dataset.rejected:  # no task of a file that cannot be read at all can be answered
        if rejected.task_id is None:
            raise ARCDataError(rejected.source, None, rejected.problem)
    raw = read_json(Path(config.challenges)) if dataset.rejected else {}
    unreadable = {}
    for rejected in dataset.rejected:  # a task we cannot read still needs entries
        unreadable[rejected.task_id] = fallback_entries(raw.get(rejected.task_id))
        logger.error("task %s cannot be read (%s); it gets fallback answers", rejected.task_id, rejected.problem)
    remove_leftovers(config.submission_path)  # from a rewrite killed midway in a run this one resumes
    submission = rewrite_submission(config, dataset, unreadable)
    logger.info("fallback submission for %d tasks written to %s", len(submission), config.submission_path)
    return dataset


def _all_predictions(config: KaggleRunConfig) -> list[dict[str, Any]]:
    return [r for path in sorted(Path(config.work_dir).glob("inference_*/predictions.jsonl"))
            for r in read_records(path)]


def rewrite_submission(config: KaggleRunConfig, dataset: Dataset, unreadable: dict[str, Any] | None = None,
                       before_replace: Callable[[], None] | None = None) -> dict[str, Any]:
    """Select over every worker's predictions so far (combined with the second submission, where there is
    one) and replace submission.json atomically, under a lock. The entries of tasks that could not be read
    are `unreadable`, or else kept from the file. `before_replace` runs between writing the new file and
    putting it in place (drills kill the process there)."""
    from arc24_lib.selection import select_attempts
    from arc24_lib.submission import build_submission, combine_attempts, submission_attempts

    work = Path(config.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "submission.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        scores = read_scores(sorted(work.glob(f"inference_*/{SCORES_FILE}")))
        attempts = select_attempts(_all_predictions(config), {task.task_id: len(task.test) for task in dataset},
                                   scores=scores)
        if config.second_submission_path and Path(config.second_submission_path).exists():
            second = json.loads(Path(config.second_submission_path).read_text(encoding="utf-8-sig"))
            attempts = combine_attempts(attempts, submission_attempts(second, config.second_zero_is_gap), dataset,
                                        config.combine_mode)
        if unreadable is None:
            kept = json.loads(Path(config.submission_path).read_text())
            unreadable = {task_id: entries for task_id, entries in kept.items() if task_id not in dataset}
        submission = {**unreadable, **build_submission(dataset, attempts)}
        write_json_atomic(submission, config.submission_path, before_replace=before_replace)
    return submission


def _solve_one(task_id: str, dataset: Dataset, config: KaggleRunConfig, plan: Any, backend_name: str,
               backend: Any, worker: int, deadline: float, pace: Pace) -> dict[str, Any]:
    """`solve.solve_task` within the task's planned share of the time (`planning.task_budget_s`, capped by
    `per_task_cap_s` and the deadline), faults injected where asked."""
    from arc24_lib.inference.backend import backend_tokenizer
    from arc24_lib.solve import solve_task

    def inject(stage: str) -> None:
        if task_id in faults(stage):
            raise InjectedFault(f"injected {'test-time training' if stage == 'ttt' else stage} fault")

    task, solve = dataset[task_id], config.solve_config(plan, backend_name, worker, None)
    tokens = planned_answer_tokens(task, solve.inference, solve.task_format,
                                   backend_tokenizer(backend, solve.task_format.model_path))
    share = task_budget_s(plan, config.pace, tokens, solve.inference.generator)
    budget_s = max(0.0, min(share, config.per_task_cap_s or share, deadline - time.time()))
    result = solve_task(task, replace(solve, budget_s=budget_s), backend, before_stage=inject, on_failure=log_failure,
                        pace=pace, planned_tokens=tokens)
    return {**result, "worker": worker, "backend": backend_name}


def _time_for_a_task(plan: Any, deadline: float) -> bool:
    """Whether a quarter of a planned task still fits before the deadline: the rule for taking a task."""
    return time.time() + plan.seconds_per_task * 0.25 < deadline


def run_worker(worker: int, config: KaggleRunConfig, pending: Any, deadline: float, plan: Any) -> list[dict]:
    """Take tasks from the `pending` queue until it is empty or the deadline is near."""
    dataset = load_dataset(config.challenges, skip_bad=True)
    name, backend = build_backend(config, worker)
    logger.info("worker %d: %s backend on %s, starting from adapter %s", worker, name, config.task_format.model_path,
                config.start_adapter)
    results, pace = [], replace(config.pace)  # one pace for the worker: a slow task raises the next one's reserve
    try:
        while True:
            try:
                task_id = pending.get(timeout=POLL_S)
            except queue.Empty:
                break
            if not _time_for_a_task(plan, deadline):
                logger.warning("worker %d: deadline near; task %s and the rest keep their current answers", worker,
                               task_id)
                break
            logger.info("worker %d: task %s", worker, task_id)
            if task_id in faults("crash"):
                crash(f"worker {worker}: injected crash on task {task_id}")
            results.append(_solve_one(task_id, dataset, config, plan, name, backend, worker, deadline, pace))
            midway = f"worker {worker}: injected crash midway through rewriting submission.json after task {task_id}"
            rewrite_submission(config, dataset, before_replace=partial(crash, midway)
                               if task_id in faults("rewrite") else None)
            with JsonlWriter(Path(config.work_dir) / RESULTS_FILE) as writer:
                writer.write(results[-1:])
            logger.info("worker %d: task %s %s", worker, task_id, results[-1])
    finally:
        if hasattr(backend, "close"):  # vLLM's engine processes would hold the worker's exit forever
            backend.close()
    return results


def run_workers(config: KaggleRunConfig, task_ids: list[str], n_workers: int, deadline: float, plan: Any,
                log_path: Path) -> list[dict[str, Any]]:
    """One worker process per GPU over a shared task queue (see `kaggle.workers.supervise`); returns one record
    per worker death."""
    shared = multiprocessing.get_context("spawn").Queue()
    for task_id in task_ids:
        shared.put(task_id)

    def work_left() -> bool:
        return not shared.empty() and _time_for_a_task(plan, deadline)

    return supervise(run_worker, (config, shared, deadline, plan), n_workers, work_left,
                     deadline + config.stop_grace_s, config.max_worker_restarts, log_path)


def tokens_per_prediction(config: KaggleRunConfig, tasks: list[Any]) -> float:
    """A task's planned answer tokens for one prediction of each test input, on average over `tasks`."""
    from arc24_lib.models import load_tokenizer

    tokenizer = load_tokenizer(config.task_format.model_path)
    one = replace(config.inference, predictions_per_test_input=1)
    return sum(planned_answer_tokens(task, one, config.task_format, tokenizer) for task in tasks) / max(1, len(tasks))


def _answered_tasks(config: KaggleRunConfig) -> tuple[set[str], set[str]]:
    """Tasks the model generated at least one answer for, and those among them with a parsed grid."""
    records = [r for r in _all_predictions(config) if r.get("n_tokens")]
    return {r["task_id"] for r in records}, {r["task_id"] for r in records if r.get("grid") is not None}


def run_submission(config: KaggleRunConfig) -> dict[str, Any]:
    """The whole competition run; returns a summary. submission.json is valid at every moment. A run in a work
    folder that holds an earlier run's results resumes it: finished tasks are kept, the rest are solved
    (each stage resumes where it was cut)."""
    start = time.time()
    Path(config.work_dir).mkdir(parents=True, exist_ok=True)
    log_path = Path(config.work_dir) / "run.log"
    log_to(log_path)
    dataset = fallback_submission(config)
    chosen = dataset.task_ids
    if config.smoke:
        config = replace(config, deadline_s=min(config.deadline_s, config.smoke_deadline_s))
        chosen = chosen[:config.smoke_tasks]
        logger.warning("SMOKE RUN (run_mode %s, not a competition rerun): %d of %d tasks, deadline %.0f s; the "
                       "others keep their fallback answers. Kaggle's rerun on the hidden tasks runs them all; set "
                       "run_mode='full' to run them all here", config.run_mode, len(chosen), len(dataset),
                       config.deadline_s)
    deadline = start + config.deadline_s
    finished = {r["task_id"] for r in read_records(Path(config.work_dir) / RESULTS_FILE)}
    todo = [task_id for task_id in chosen if task_id not in finished]
    if finished:
        logger.info("resuming the run in %s: %d tasks finished before, %d to do", config.work_dir,
                    len(dataset) - len(todo), len(todo))
    n_workers = config.n_workers or max(1, visible_gpus())
    plan = plan_budget(max(1, len(todo)), n_workers, config.deadline_s, config.pace,
                       tokens_per_prediction(config, [dataset[task_id] for task_id in todo] or list(dataset)),
                       config.inference.generator, max_steps=config.test_time.max_steps if config.test_time else 0,
                       max_predictions=config.inference.predictions_per_test_input)
    if config.per_task_cap_s:
        plan = replace(plan, seconds_per_task=min(plan.seconds_per_task, config.per_task_cap_s))
    logger.info("plan for %d tasks on %d workers: %s", len(dataset), n_workers, plan)
    deaths = run_workers(config, todo, n_workers, deadline, plan, log_path) if todo else []
    submission = rewrite_submission(config, dataset)
    results = read_records(Path(config.work_dir) / RESULTS_FILE)
    answered, with_grid = _answered_tasks(config)
    not_run = sorted(set(chosen) - {r["task_id"] for r in results})
    if not_run:
        logger.warning("%d tasks were not run before the deadline or after a worker died; they keep their "
                       "fallback answers: %s", len(not_run), not_run)
    summary = {"mode": "smoke" if config.smoke else "full", "tasks": len(submission),
               "tasks_chosen": len(chosen), "tasks_processed": len(results), "not_run": not_run,
               "answered": len(answered), "with_grid": len(with_grid),
               "workers": n_workers, "worker_deaths": deaths, "backend": config.inference.backend,
               "backends_used": sorted({r["backend"] for r in results}), "plan": plan.__dict__,
               "seconds": round(time.time() - start, 1),
               "failed": [r["task_id"] for r in results if "failed" in (r.get("ttt"), r.get("inference"))]}
    logger.info("run finished: %s", summary)
    return summary


def check_run(summary: dict[str, Any]) -> list[str]:
    """Raise when the model answered no task (every worker dead, no backend): submission.json then holds only
    fallback answers, a silent zero otherwise. Call it after the file is written, so that it stays valid.
    Returns the problems of a run that answered but not as asked (`finish_run` stops a push run on them)."""
    if summary["tasks"] and not summary["answered"]:
        raise RuntimeError(f"no task of {summary['tasks']} got an answer from the model: submission.json holds only "
                           f"fallback answers (worker deaths: {summary['worker_deaths']}; failed tasks: "
                           f"{summary['failed']}); see run.log in the work folder")
    warnings = []
    if summary["backends_used"] and summary["backends_used"] != [summary["backend"]]:
        warnings.append(f"the run asked for the {summary['backend']} backend but used {summary['backends_used']} "
                        "(run.log says why; on a GPU the hf backend is several times slower, so far fewer "
                        "predictions fit the deadline)")
    if summary["answered"] and not summary["with_grid"]:
        warnings.append("the model answered, but no answer parsed as a grid: is the model folder the one trained "
                        "with this grid_encoder and prompt_version?")
    for warning in warnings:
        logger.warning(warning)
    return warnings


def finish_run(config: KaggleRunConfig, summary: dict[str, Any], degraded: list[str]) -> dict[str, Any]:
    """The run's last step: submission.json validated against the challenges (a problem raises: it would not
    score), `check_run`, and each problem of the run stopping a push run or, in a competition rerun, named in
    the summary's `degraded` (with those found before the run). Writes summary.json to the work folder."""
    from arc24_lib.submission import validate_submission

    submission = json.loads(Path(config.submission_path).read_text())
    problems = validate_submission(submission, load_dataset(config.challenges, skip_bad=True))
    if problems:
        raise ValueError(f"{config.submission_path} would not score: " + "; ".join(problems[:10]))
    summary = {**summary, "degraded": list(degraded)}
    write_json_atomic(summary, Path(config.work_dir) / SUMMARY_FILE)
    summary["degraded"] = stop_or_degrade(check_run(summary), summary["degraded"])
    write_json_atomic(summary, Path(config.work_dir) / SUMMARY_FILE)
    return summary
