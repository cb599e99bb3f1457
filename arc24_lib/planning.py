"""The time model (K3): measured paces, each task's inference reserve, and the steps and predictions per task
that fit a deadline. `solve_task` and the competition run both plan with one `Pace`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from arc24_lib.data import Task


@dataclass
class Pace:
    """Seconds per unit of work. The defaults were measured on this 2-core CPU with the embedded model; the
    competition run's GPU figures (kaggle.run.KAGGLE_DIFFERENCES) are estimates until measured there."""

    seconds_per_step: float = field(default=0.53, metadata={
        "help": "one test-time training step (bench/ttt_roofline.py: 0.532 s with the reduced vocabulary on the "
                "smallest ARC-AGI-1 training tasks)"})
    seconds_per_answer_token: float = field(default=0.055, metadata={
        "help": "greedy AIRV and augmented scoring per planned answer token (bench/candidates.py: at most 0.0512 on "
                "the 24 smallest ARC-AGI-1 training tasks); other generators cost GENERATOR_COST times as much"})
    startup_s: float = field(default=40.0, metadata={
        "help": "starting a worker's backend (vLLM on this CPU: 33-42 s; the hf backend: a few seconds)"})
    overhead_per_task_s: float = field(default=10.0, metadata={
        "help": "per task besides training and inference: loading the adapter, selection, rewriting the submission"})

    def __post_init__(self) -> None:
        if self.seconds_per_step <= 0 or self.seconds_per_answer_token <= 0 or self.startup_s < 0 \
                or self.overhead_per_task_s < 0:
            raise ValueError(f"{self}: the seconds per step and per answer token must be positive, the others >= 0")

    def inference_s(self, answer_tokens: int, generator: str) -> float:
        """Inference and scoring of `answer_tokens` planned tokens with `generator`."""
        from arc24_lib.inference.airv import GENERATOR_COST

        return self.seconds_per_answer_token * GENERATOR_COST[generator] * answer_tokens

    def observe(self, seconds: float, answer_tokens: int, generator: str) -> None:
        """Raise the pace to a task measured slower. It never falls: a task's pace varies threefold with the
        candidates it scores, so a fast task says little about the next."""
        from arc24_lib.inference.airv import GENERATOR_COST

        if answer_tokens > 0:
            measured = seconds / (answer_tokens * GENERATOR_COST[generator])
            self.seconds_per_answer_token = max(self.seconds_per_answer_token, measured)


def planned_answer_tokens(task: Task, config: Any, task_format: Any, tokenizer: Any) -> int:
    """The answer tokens inference may write for a task (an InferenceConfig, a TaskFormat): each test input's
    token budget for each of its augmented prompts (what AIRV and scoring time grows with)."""
    from arc24_lib.inference.airv import answer_budget

    budgets = [answer_budget(task, index, config, task_format.encoder, tokenizer) for index in range(len(task.test))]
    return sum(budgets) * config.predictions_per_test_input


@dataclass(frozen=True)
class BudgetPlan:
    """What each task may spend, and whether the whole run fits the deadline."""

    steps_per_task: int
    predictions_per_test_input: int
    seconds_per_task: float  # planned: training + inference + overhead
    tasks_per_worker: int
    planned_seconds: float  # per worker, start to end
    fits: bool


def plan_budget(n_tasks: int, n_workers: int, deadline_s: float, pace: Pace, tokens_per_prediction: float,
                generator: str = "greedy", max_steps: int = 300, min_steps: int = 0, max_predictions: int = 32,
                min_predictions: int = 2) -> BudgetPlan:
    """Steps and predictions per task so that every worker finishes its share before the deadline.

    `tokens_per_prediction`: a task's answer tokens for one prediction of each of its test inputs, on
    average. Predictions are kept at `max_predictions` while training can still get `min_steps`;
    otherwise they shrink (down to `min_predictions`) before training does. Paces are per worker (one
    GPU each); tasks are shared evenly between workers.
    """
    if n_tasks < 1 or n_workers < 1 or deadline_s <= 0 or tokens_per_prediction <= 0:
        raise ValueError(f"n_tasks {n_tasks}, n_workers {n_workers}, deadline_s {deadline_s} and "
                         f"tokens_per_prediction {tokens_per_prediction} must all be positive")
    tasks_per_worker = math.ceil(n_tasks / n_workers)
    per_task = (deadline_s - pace.startup_s) / tasks_per_worker - pace.overhead_per_task_s

    def inference_s(predictions: int) -> float:
        return pace.inference_s(predictions * tokens_per_prediction, generator)

    predictions = max_predictions
    while predictions > min_predictions and per_task - inference_s(predictions) < min_steps * pace.seconds_per_step:
        predictions -= 1
    steps = int(min(max_steps, max(0.0, per_task - inference_s(predictions)) // pace.seconds_per_step))
    seconds_per_task = steps * pace.seconds_per_step + inference_s(predictions) + pace.overhead_per_task_s
    planned = pace.startup_s + tasks_per_worker * seconds_per_task
    return BudgetPlan(steps, predictions, round(seconds_per_task, 1), tasks_per_worker, round(planned, 1),
                      fits=planned <= deadline_s and steps >= min_steps)


def task_budget_s(plan: BudgetPlan, pace: Pace, answer_tokens: int, generator: str) -> float:
    """What `solve_task` may spend on one task under `plan`: its planned steps, the inference of its own
    planned answer tokens (a task with larger grids gets more than the average the plan was made with), and
    the overhead (training's setup counts against its time budget, so the steps need it)."""
    return plan.steps_per_task * pace.seconds_per_step + pace.inference_s(answer_tokens, generator) \
        + pace.overhead_per_task_s
