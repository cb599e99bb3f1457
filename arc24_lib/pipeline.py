"""The inference half of the pipeline in one call: AIRV → voting → submission.json → metrics report."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from arc24_lib.data import Dataset
from arc24_lib.inference.airv import InferenceConfig, read_predictions, run_airv
from arc24_lib.inference.backend import Backend
from arc24_lib.inference.scoring import SCORES_FILE, read_scores
from arc24_lib.selection import select_attempts
from arc24_lib.submission import write_json_atomic, write_submission

logger = logging.getLogger(__name__)


def vote_and_report(dataset: Dataset, predictions_path: str | Path, output_dir: str | Path,
                    picture_task_ids: list[str] | None = None) -> dict[str, Any]:
    """Select two attempts per test input (augmented scores from scores.jsonl beside the predictions
    where present, else votes), write submission.json, and metrics + report where outputs are known."""
    from arc24_lib.evaluation import evaluate, markdown_table, write_report

    output_dir = Path(output_dir)
    records = read_predictions(predictions_path)
    scores = read_scores(Path(predictions_path).parent / SCORES_FILE)
    attempts = select_attempts(records, {task.task_id: len(task.test) for task in dataset}, scores=scores)
    write_json_atomic(attempts, output_dir / "attempts.json")
    outputs: dict[str, Any] = {"submission": write_submission(dataset, attempts, output_dir / "submission.json"),
                               "attempts": output_dir / "attempts.json", "n_predictions": len(records)}
    if any(task.has_solutions for task in dataset):
        result = evaluate(records, attempts, dataset)
        outputs["metrics"] = write_json_atomic(result, output_dir / "metrics.json")
        outputs["report"] = write_report(result, attempts, dataset, output_dir, picture_task_ids)
        outputs["summary"] = result["summary"]
        outputs["solved"] = sum(values["vote_2"] == 1.0 for values in result["per_task"].values())
        logger.info("metrics over %d tasks:\n%s", result["n_tasks"], markdown_table(result, per_task=False))
    return outputs


def predict(dataset: Dataset, config: InferenceConfig, backend: Backend | None = None) -> dict[str, Any]:
    """AIRV predictions for every test input, then `vote_and_report` into the same output folder.

    The model never sees test outputs: AIRV runs on the dataset with them removed.
    """
    hidden = Dataset(dataset.name, {task.task_id: task.without_solutions() for task in dataset})
    predictions = run_airv(hidden, config, backend=backend)
    outputs = vote_and_report(dataset, predictions, config.output_dir)
    (Path(config.output_dir) / "outputs.json").write_text(json.dumps(outputs, default=str, indent=2))
    return outputs


def solve_tasks(dataset: Dataset, ttt_config: Any, inference_config: InferenceConfig,
                budget_s: float | None = None, inference_reserve_s: float = 20.0,
                backend: Backend | None = None) -> list[dict[str, Any]]:
    """Task by task: test-time fine-tuning, then AIRV with the task's adapter, within a time budget.

    The budget covers both stages: training gets `budget_s - inference_reserve_s × test inputs`
    at most, since AIRV and scoring take about that long per test input.
    Adapters go to `ttt_config.output_dir`, predictions to `inference_config.output_dir`; both
    stages resume, so a rerun continues where a crash stopped. Returns one summary per task
    (`solved`: one of the two selected attempts is right for every test input; `pass_n`: share of
    test inputs with a right grid among all predictions; both None where the outputs are unknown).
    """
    import time
    from dataclasses import replace

    from tqdm.auto import tqdm

    from arc24_lib.evaluation import evaluate
    from arc24_lib.test_time import fine_tune_at_test_time

    inference_config = replace(inference_config, adapters_dir=ttt_config.output_dir)
    backend = backend or inference_config.build_backend()
    results = []
    for task in tqdm(list(dataset), desc="solving", unit="task"):
        start = time.perf_counter()
        single = Dataset(task.task_id, {task.task_id: task.without_solutions()})
        task_config = ttt_config
        if budget_s is not None:
            training_budget = max(1.0, budget_s - inference_reserve_s * len(task.test))
            task_config = replace(ttt_config, time_budget_s=min(ttt_config.time_budget_s or training_budget,
                                                                training_budget))
        trained = fine_tune_at_test_time(single, task_config)[0]
        trained_at = time.perf_counter()
        predictions = run_airv(single, inference_config, backend=backend)
        records = [r for r in read_predictions(predictions) if r["task_id"] == task.task_id]
        scores = read_scores(Path(predictions).parent / SCORES_FILE)
        attempts = select_attempts(records, {task.task_id: len(task.test)}, scores=scores)
        solved = pass_n = None
        if task.has_solutions:
            metrics = evaluate(records, attempts, Dataset(task.task_id, {task.task_id: task}))["per_task"][task.task_id]
            solved, pass_n = metrics["vote_2"] == 1.0, metrics["pass_n"]
        results.append({"task_id": task.task_id, "solved": solved, "pass_n": pass_n, "ttt_status": trained["status"],
                        "steps": trained.get("steps", 0), "stop_reason": trained.get("stop_reason"),
                        "final_loss": trained.get("final_loss"), "ttt_seconds": round(trained_at - start, 1),
                        "inference_seconds": round(time.perf_counter() - trained_at, 1),
                        "seconds": round(time.perf_counter() - start, 1)})
        logger.info("task %s: %s", task.task_id, results[-1])
    return results
