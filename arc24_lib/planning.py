"""Time-budget planning: steps and predictions per task that fit a deadline (K3)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class BudgetPlan:
    """What each task may spend, and whether the whole run fits the deadline."""

    steps_per_task: int
    predictions_per_test_input: int
    seconds_per_task: float  # planned: training + inference + overhead
    tasks_per_worker: int
    planned_seconds: float  # per worker, start to end
    fits: bool


def plan_budget(n_tasks: int, n_workers: int, deadline_s: float, seconds_per_step: float,
                seconds_per_prediction: float, test_inputs_per_task: float = 1.1,
                overhead_per_task_s: float = 10.0, startup_s: float = 120.0, max_steps: int = 300,
                min_steps: int = 0, max_predictions: int = 32, min_predictions: int = 2) -> BudgetPlan:
    """Steps and predictions per task so that every worker finishes its share before the deadline.

    Predictions are kept at `max_predictions` while training can still get `min_steps`;
    otherwise they shrink (down to `min_predictions`) before training does. Times are measured
    per worker (one GPU each); tasks are shared evenly between workers.
    """
    if n_tasks < 1 or n_workers < 1 or deadline_s <= 0 or seconds_per_step <= 0 or seconds_per_prediction <= 0:
        raise ValueError("n_tasks, n_workers, deadline_s and the measured seconds must all be positive")
    tasks_per_worker = math.ceil(n_tasks / n_workers)
    per_task = (deadline_s - startup_s) / tasks_per_worker - overhead_per_task_s
    predictions = max_predictions
    while predictions > min_predictions and per_task - predictions * test_inputs_per_task * seconds_per_prediction \
            < min_steps * seconds_per_step:
        predictions -= 1
    inference_s = predictions * test_inputs_per_task * seconds_per_prediction
    steps = int(min(max_steps, max(0.0, per_task - inference_s) // seconds_per_step))
    seconds_per_task = steps * seconds_per_step + inference_s + overhead_per_task_s
    planned = startup_s + tasks_per_worker * seconds_per_task
    return BudgetPlan(steps, predictions, round(seconds_per_task, 1), tasks_per_worker, round(planned, 1),
                      fits=planned <= deadline_s and steps >= min_steps)
