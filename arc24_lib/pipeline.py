"""The inference half of the pipeline over a dataset: AIRV → scoring → selection → submission.json → report."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from arc24_lib.data import Dataset
from arc24_lib.files import read_records, write_json_atomic
from arc24_lib.inference.airv import InferenceConfig
from arc24_lib.inference.backend import Backend
from arc24_lib.inference.records import SCORES_FILE, read_scores
from arc24_lib.selection import select_attempts
from arc24_lib.submission import write_submission
from arc24_lib.task_format import TaskFormat, adapters_format

logger = logging.getLogger(__name__)


def vote_and_report(dataset: Dataset, predictions_path: str | Path, output_dir: str | Path,
                    picture_task_ids: list[str] | None = None) -> dict[str, Any]:
    """Select two attempts per test input (augmented scores from scores.jsonl beside the predictions
    where present, else votes), write submission.json, and metrics + report where outputs are known."""
    from arc24_lib.evaluation import evaluate, markdown_table, write_report

    output_dir = Path(output_dir)
    records = read_records(predictions_path)
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


def predict(dataset: Dataset, config: InferenceConfig, task_format: TaskFormat | None = None,
            backend: Backend | None = None) -> dict[str, Any]:
    """AIRV predictions and their scores for every test input (`solve.infer`), then `vote_and_report`
    into the same output folder. With adapters from test-time training, the task format is the one
    saved beside them (`task_format.adapters_format`: a field set to another value is refused), else
    `task_format` or the defaults. The model never sees test outputs."""
    from arc24_lib.solve import infer

    task_format = adapters_format(config.adapters_dir, task_format)
    backend = backend or config.build_backend(task_format.model_path)
    predictions = infer(dataset.without_solutions(), config, task_format, backend)
    outputs = vote_and_report(dataset, predictions, config.output_dir)
    (Path(config.output_dir) / "outputs.json").write_text(json.dumps(outputs, default=str, indent=2))
    return outputs
