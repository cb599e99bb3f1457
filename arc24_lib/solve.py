"""Solving a task: test-time fine-tuning, then AIRV and augmented scoring with its adapter, then
selection, within a time budget. The bench, the pipeline and the competition run all solve tasks
through `solve_task`; the notebooks run the same stages over all tasks at once."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from arc24_lib.data import Dataset, Task
from arc24_lib.files import read_records
from arc24_lib.inference.airv import InferenceConfig, run_airv
from arc24_lib.inference.backend import Backend
from arc24_lib.inference.records import PREDICTIONS_FILE, SCORES_FILE, read_scores
from arc24_lib.planning import Pace, planned_answer_tokens
from arc24_lib.task_format import TaskFormat
from arc24_lib.test_time import TestTimeConfig

logger = logging.getLogger(__name__)
MIN_TRAINING_S = 1.0  # a task with less training time left than this is predicted without training


@dataclass
class SolveConfig:
    """Solving tasks one at a time (`solve_task`): test-time fine-tuning, then inference with each
    task's adapter, both in one task format, within a time budget per task."""

    task_format: TaskFormat = field(default_factory=TaskFormat, metadata={
        "help": "the model, the adapter training starts from, and the task's text form: one value that "
                "test-time training and inference both read"})
    test_time: TestTimeConfig | None = field(default_factory=TestTimeConfig, metadata={
        "help": "test-time fine-tuning per task; None: predict with the model (and adapter) as it is"})
    inference: InferenceConfig = field(default_factory=InferenceConfig, metadata={
        "help": "AIRV, augmented scoring and selection"})
    budget_s: float | None = field(default=240.0, metadata={
        "help": "seconds per task, training and inference together; None: no limit"})
    pace: Pace = field(default_factory=Pace, metadata={
        "help": "the time model: what each task's inference reserve assumes (raised, within a run, to the slowest "
                "task measured)"})

    def __post_init__(self) -> None:
        if self.budget_s is not None and self.budget_s < 0:
            raise ValueError(f"budget_s is {self.budget_s}; give seconds (0: no time to train), or None")
        if self.test_time is not None:  # inference reads the adapters test-time training writes
            self.inference = replace(self.inference, adapters_dir=self.test_time.output_dir)

    def with_output_dir(self, output_dir: str | Path) -> SolveConfig:
        """The same settings with adapters in `<output_dir>/adapters`, predictions in `<output_dir>/inference`."""
        test_time = self.test_time and replace(self.test_time, output_dir=str(Path(output_dir) / "adapters"))
        return replace(self, test_time=test_time,
                       inference=replace(self.inference, output_dir=str(Path(output_dir) / "inference")))


def infer(dataset: Dataset, config: InferenceConfig, task_format: TaskFormat, backend: Backend,
          deadline: float | None = None) -> Path:
    """AIRV predictions for every test input, then their augmented scores where asked, both cut at
    `deadline` (a `time.perf_counter()` time; see `run_airv`); returns the predictions path (the
    scores lie beside it). The dataset must not hold test outputs."""
    from arc24_lib.inference.scoring import score_predictions

    path = run_airv(dataset, config, task_format, backend=backend, deadline=deadline)
    if config.augmented_scoring:
        score_predictions(dataset, config, task_format, backend, deadline=deadline)
    return path


def task_metrics(task: Task, predictions_path: str | Path) -> dict[str, Any]:
    """`solved`: one of the two selected attempts is right for every test input; `pass_n`: the
    share of test inputs with a right grid among all predictions. The task must hold its outputs."""
    from arc24_lib.evaluation import evaluate
    from arc24_lib.selection import select_attempts

    records = [r for r in read_records(predictions_path) if r["task_id"] == task.task_id]
    scores = read_scores(Path(predictions_path).parent / SCORES_FILE)
    attempts = select_attempts(records, {task.task_id: len(task.test)}, scores=scores)
    metrics = evaluate(records, attempts, Dataset(task.task_id, {task.task_id: task}))["per_task"][task.task_id]
    return {"solved": metrics["vote_2"] == 1.0, "pass_n": metrics["pass_n"]}


def _log_failure(what: str, error: Exception) -> None:
    logger.exception("%s: %s: %s", what, type(error).__name__, error)


def solve_task(task: Task, config: SolveConfig, backend: Backend,
               before_stage: Callable[[str], None] | None = None,
               on_failure: Callable[[str, Exception], None] = _log_failure,
               pace: Pace | None = None, planned_tokens: float | None = None) -> dict[str, Any]:
    """Test-time fine-tuning (where `config.test_time` is given), then AIRV and augmented scoring
    with the task's adapter, within `config.budget_s` seconds for the whole task.

    Inference keeps a reserve: the task's planned answer tokens (`planned_tokens`, counted here where
    None) at `pace` (`config.pace` where None), which this task's inference then raises if it was
    slower (pass one pace to every task of a run).
    Training gets what is left of the budget, or `test_time.time_budget_s` where that is shorter; with
    under `MIN_TRAINING_S` left, the task is predicted without training. Where the time left after
    training holds less than the reserve, each test input gets that share of its predictions (rounded
    up, at least one). Inference ends at the budget: a generation call started before it finishes, later
    calls make first predictions only, and selection works from what was predicted.
    Adapters go to `test_time.output_dir`, predictions to `inference.output_dir`; both resume. A failing
    stage is reported (`on_failure`) and the task goes on. `before_stage("ttt" | "inference")` runs
    before each stage (the competition run injects faults there).

    Returns the task's summary: its budget, stage statuses (`ttt`: trained, skipped, failed or not_run;
    `inference`: done or failed), steps, stop reason, final loss, seconds per stage and in all, the
    reserve, the predictions asked per test input, `inference_cut` (inference reached the budget's
    end), and where the outputs are known `solved` and `pass_n` (see `task_metrics`; else None).
    """
    from arc24_lib.inference.backend import backend_tokenizer
    from arc24_lib.test_time import fine_tune_at_test_time

    start = time.perf_counter()
    deadline = None if config.budget_s is None else start + config.budget_s
    hidden = Dataset(task.task_id, {task.task_id: task}).without_solutions()
    result: dict[str, Any] = {"task_id": task.task_id, "budget_s": config.budget_s, "ttt": "not_run", "steps": 0,
                              "stop_reason": None, "final_loss": None}
    pace, task_format, generator = pace or replace(config.pace), config.task_format, config.inference.generator
    tokens = planned_tokens if planned_tokens is not None else planned_answer_tokens(
        task, config.inference, task_format, backend_tokenizer(backend, task_format.model_path))
    reserve_s = pace.inference_s(tokens, generator)
    test_time = config.test_time
    if test_time is not None:
        training_s = test_time.time_budget_s
        if deadline is not None:
            left = deadline - time.perf_counter() - reserve_s
            training_s = min(training_s or left, left)
        if training_s is None or training_s >= MIN_TRAINING_S:
            try:
                if before_stage:
                    before_stage("ttt")
                trained = fine_tune_at_test_time(hidden, replace(test_time, time_budget_s=training_s), task_format)[0]
                result.update(ttt=trained["status"], steps=trained.get("steps", 0),
                              stop_reason=trained.get("stop_reason"), final_loss=trained.get("final_loss"))
            except Exception as error:
                on_failure(f"task {task.task_id}: test-time training failed", error)
                result["ttt"] = "failed"
    trained_at = time.perf_counter()
    inference, planned = config.inference, config.inference.predictions_per_test_input
    if deadline is not None:  # fewer predictions where the time left holds less than the reserve; never none
        fitting = math.ceil(planned * (deadline - trained_at) / reserve_s) if reserve_s > 0 else planned
        inference = replace(inference, predictions_per_test_input=max(1, min(planned, fitting)))
    result["predictions_per_test_input"] = inference.predictions_per_test_input
    try:
        if before_stage:
            before_stage("inference")
        predictions = infer(hidden, inference, task_format, backend, deadline=deadline)
        result["inference"] = "done"
    except Exception as error:
        on_failure(f"task {task.task_id}: inference failed", error)
        predictions, result["inference"] = Path(inference.output_dir) / PREDICTIONS_FILE, "failed"
    end = time.perf_counter()
    if result["inference"] == "done":
        pace.observe(end - trained_at, tokens * inference.predictions_per_test_input / planned, generator)
    # to the millisecond: a fast inference rounded to tenths reads as none, and the pace it set is lost to the reader
    result.update(ttt_seconds=round(trained_at - start, 3), inference_seconds=round(end - trained_at, 3),
                  inference_reserve_s=round(reserve_s, 3), inference_cut=deadline is not None and end >= deadline,
                  seconds=round(end - start, 3), solved=None, pass_n=None)
    if task.has_solutions:
        result.update(task_metrics(task, predictions))
    logger.info("task %s: %s", task.task_id, result)
    return result


def solve_tasks(dataset: Dataset, config: SolveConfig, backend: Backend | None = None) -> list[dict[str, Any]]:
    """`solve_task` for every task in turn, with one backend; returns their summaries."""
    from tqdm.auto import tqdm

    backend = backend or config.inference.build_backend(config.task_format.model_path)
    pace = replace(config.pace)  # one pace for the run: a slow task raises the next tasks' reserve
    return [solve_task(task, config, backend, pace=pace) for task in tqdm(list(dataset), desc="solving", unit="task")]
