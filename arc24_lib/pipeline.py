"""The inference half of the pipeline in one call: AIRV → voting → submission.json → metrics report."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from arc24_lib.data import Dataset, Task
from arc24_lib.experts import ALL_FRAMES, DEFAULT_OWN_FRAME_SHARE, OWN_FRAME, expert_stages, own_frame_inference
from arc24_lib.inference.airv import InferenceConfig, read_predictions, run_airv
from arc24_lib.inference.backend import Backend
from arc24_lib.inference.scoring import SCORES_FILE, read_scores
from arc24_lib.selection import Scores, select_attempts_of_experts
from arc24_lib.submission import write_json_atomic, write_submission

logger = logging.getLogger(__name__)


def read_expert(predictions_path: str | Path) -> tuple[list[dict[str, Any]], Scores]:
    """One expert's prediction records and the augmented scores beside them (empty where unscored)."""
    return read_predictions(predictions_path), read_scores(Path(predictions_path).parent / SCORES_FILE)


def vote_and_report(dataset: Dataset, predictions_path: str | Path | list[str | Path], output_dir: str | Path,
                    picture_task_ids: list[str] | None = None) -> dict[str, Any]:
    """Select two attempts per test input (augmented scores from scores.jsonl beside the predictions
    where present, else votes), write submission.json, and metrics + report where outputs are known.
    Several predictions files are several experts, the main one first: a later one's best grid
    takes an attempt where 3 in 4 of its predictions agree on it (`select_attempts_of_experts`)."""
    from arc24_lib.evaluation import evaluate, markdown_table, write_report

    output_dir = Path(output_dir)
    paths = predictions_path if isinstance(predictions_path, list) else [predictions_path]
    experts_records = [read_expert(path) for path in paths]
    records = [record for expert_records, _ in experts_records for record in expert_records]
    attempts = select_attempts_of_experts(experts_records, {task.task_id: len(task.test) for task in dataset})
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

    Where `config.adapters_dir` holds own-frame adapters too (`own_frame/`, see `experts`), they
    predict in each task's own frame into `<output_dir>/own_frame` and share the attempts.
    The model never sees test outputs: AIRV runs on the dataset with them removed.
    """
    hidden = Dataset(dataset.name, {task.task_id: task.without_solutions() for task in dataset})
    backend = backend or config.build_backend()
    predictions = [run_airv(hidden, config, backend=backend)]
    if config.adapters_dir and (Path(config.adapters_dir) / OWN_FRAME).is_dir():
        own = own_frame_inference(config, Path(config.adapters_dir) / OWN_FRAME)
        predictions.append(run_airv(hidden, own, backend=backend))
    outputs = vote_and_report(dataset, predictions, config.output_dir)
    (Path(config.output_dir) / "outputs.json").write_text(json.dumps(outputs, default=str, indent=2))
    return outputs


def solve_tasks(dataset: Dataset, ttt_config: Any, inference_config: InferenceConfig,
                budget_s: float | None = None, inference_reserve_s: float = 20.0,
                backend: Backend | None = None,
                own_frame_share: float = DEFAULT_OWN_FRAME_SHARE) -> list[dict[str, Any]]:
    """Task by task: test-time fine-tuning, then AIRV with the task's adapter, within a time budget.

    The budget covers both stages: training gets `budget_s - inference_reserve_s × test inputs`
    at most (per expert), since AIRV and scoring take about that long per test input.
    Adapters go to `ttt_config.output_dir`, predictions to `inference_config.output_dir`; both
    stages resume, so a rerun continues where a crash stopped.

    With `own_frame_share` > 0 (e.g. 0.25; off by default), each task first trains a second
    expert in its own frame only, for at most that share of the training time (less when it
    reaches the early-stop loss), and predicts with it; the usual expert trained over all frames
    gets the time left. Its best grid is the first attempt; the own-frame expert's is the second
    where at least 3 in 4 of its predictions agree on it (see `arc24_lib.experts`).

    Returns one summary per task (`solved`: one of the two selected attempts is right for every
    test input; `pass_n`: share of test inputs with a right grid among all predictions; both None
    where the outputs are unknown; `experts`: steps, stop reason, loss and seconds of each expert).
    """
    import time
    from dataclasses import replace

    from tqdm.auto import tqdm

    from arc24_lib.test_time import fine_tune_at_test_time

    stages = expert_stages(ttt_config, inference_config, own_frame_share)
    backend = backend or inference_config.build_backend()
    results = []
    for task in tqdm(list(dataset), desc="solving", unit="task"):
        start = spent = time.perf_counter()
        single = Dataset(task.task_id, {task.task_id: task.without_solutions()})
        experts, summaries = {}, {}
        for index, expert in enumerate(stages):
            stage_start, task_config = time.perf_counter(), expert.test_time
            if budget_s is not None:  # each expert still to come keeps its inference reserve
                left = budget_s - (spent - start) - inference_reserve_s * len(task.test) * (len(stages) - index)
                training_budget = max(1.0, left * expert.share)
                task_config = replace(task_config, time_budget_s=min(task_config.time_budget_s or training_budget,
                                                                     training_budget))
            trained = fine_tune_at_test_time(single, task_config)[0]
            trained_at = time.perf_counter()
            predictions = run_airv(single, expert.inference, backend=backend)
            records, scores = read_expert(predictions)
            experts[expert.name] = ([r for r in records if r["task_id"] == task.task_id], scores)
            spent = time.perf_counter()
            summaries[expert.name] = {"ttt_status": trained["status"], "steps": trained.get("steps", 0),
                                      "stop_reason": trained.get("stop_reason"),
                                      "final_loss": trained.get("final_loss"),
                                      "ttt_seconds": round(trained_at - stage_start, 1),
                                      "inference_seconds": round(spent - trained_at, 1)}
        solved = pass_n = None
        if task.has_solutions:
            names = sorted(experts, key=lambda name: name != ALL_FRAMES)  # the main expert first
            alone, solved, pass_n = _expert_metrics(task, [experts[name] for name in names])
            for name, expert_solved in zip(names, alone, strict=True):
                summaries[name]["solved"] = expert_solved
        main = summaries[ALL_FRAMES]
        results.append({"task_id": task.task_id, **main, "solved": solved, "pass_n": pass_n,
                        "ttt_seconds": round(sum(e["ttt_seconds"] for e in summaries.values()), 1),
                        "inference_seconds": round(sum(e["inference_seconds"] for e in summaries.values()), 1),
                        "seconds": round(time.perf_counter() - start, 1), "experts": summaries})
        logger.info("task %s: %s", task.task_id, results[-1])
    return results


def _expert_metrics(task: Task, experts: list[tuple[list[dict[str, Any]], Any]]) -> tuple[list[bool], bool, float]:
    """Whether each expert alone solves `task`, whether the experts together do (the main one
    first, see `select_attempts_of_experts`), and the share of test inputs with a right grid
    among all their predictions."""
    from arc24_lib.evaluation import evaluate

    known, n_test = Dataset(task.task_id, {task.task_id: task}), {task.task_id: len(task.test)}

    def metrics(chosen: list[tuple[list[dict[str, Any]], Any]]) -> dict[str, Any]:
        pooled = [record for records, _ in chosen for record in records]
        return evaluate(pooled, select_attempts_of_experts(chosen, n_test), known)["per_task"][task.task_id]

    together = metrics(experts)
    return [metrics([expert])["vote_2"] == 1.0 for expert in experts], together["vote_2"] == 1.0, together["pass_n"]
