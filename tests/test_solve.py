"""The solve path: test-time fine-tuning, AIRV, scoring and selection per task within a budget."""

import json
import time
from dataclasses import replace

import pytest

from arc24_lib.files import read_records
from arc24_lib.inference.airv import GENERATOR_COST, InferenceConfig
from arc24_lib.partitions import subset_by_ids
from arc24_lib.planning import Pace
from arc24_lib.solve import SolveConfig, solve_task, solve_tasks
from arc24_lib.task_format import TaskFormat, saved_format
from arc24_lib.test_time import TestTimeConfig, fine_tune_at_test_time


def configs(tmp_path, model_path, budget_s=None, seconds_per_answer_token=1.25, **inference):
    """Two prompts of 8 answer tokens per test input: 1.25 s a token reserves 20 s per test input."""
    test_time = TestTimeConfig(output_dir=str(tmp_path / "ttt"), max_steps=2, lora_r=4, logging_steps=1,
                               max_seq_len=1024)
    values = dict(output_dir=str(tmp_path / "inference"), predictions_per_test_input=2, max_new_tokens=8, device="cpu")
    return SolveConfig(task_format=TaskFormat(model_path=str(model_path)), test_time=test_time,
                       inference=InferenceConfig(**{**values, **inference}), budget_s=budget_s,
                       pace=Pace(seconds_per_answer_token=seconds_per_answer_token))


def test_solve_tasks_reserves_inference_time_per_test_input_and_reports_each_task(tmp_path, tiny_model_path,
                                                                                   arc1_training, monkeypatch):
    tasks = subset_by_ids(arc1_training, ["44f52bb0", "6150a2bd"])  # two test inputs, then one
    assert [len(task.test) for task in tasks] == [2, 1]
    config = configs(tmp_path, tiny_model_path, budget_s=100.0)
    budgets, seen = [], []

    def recording(dataset, config, task_format):  # the real training, with its time budget and its tasks noted
        budgets.append(config.time_budget_s)
        seen.extend(task.has_solutions for task in dataset)
        return fine_tune_at_test_time(dataset, config, task_format)

    monkeypatch.setattr("arc24_lib.test_time.fine_tune_at_test_time", recording)
    results = solve_tasks(tasks, config)
    assert budgets == pytest.approx([60.0, 80.0], abs=0.5) and budgets[0] <= 60.0 and not any(seen)
    assert [r["task_id"] for r in results] == ["44f52bb0", "6150a2bd"]
    for result in results:
        assert result["ttt"] == "trained" and result["steps"] == 2 and result["inference"] == "done"
        assert isinstance(result["solved"], bool) and 0.0 <= result["pass_n"] <= 1.0
        assert result["seconds"] >= result["ttt_seconds"] + result["inference_seconds"] - 0.2
    # inference used each task's own adapter, and augmented scoring ran as its own stage
    saved = json.loads((tmp_path / "inference" / "inference_config.json").read_text())
    assert saved["adapters_dir"] == config.test_time.output_dir
    # both stages worked in the one task format, and say so beside their outputs
    assert saved_format(tmp_path / "ttt") == saved_format(tmp_path / "inference") == config.task_format
    assert (tmp_path / "inference" / "scores.jsonl").exists()
    assert len(read_records(tmp_path / "inference" / "predictions.jsonl")) == 2 * 3


def test_the_reserve_follows_the_planned_answer_tokens_at_the_slowest_pace_measured(tmp_path, tiny_model_path,
                                                                                  arc1_training, monkeypatch):
    tasks = subset_by_ids(arc1_training, ["44f52bb0", "6150a2bd"])  # two test inputs, then one
    # the configured pace: 2 test inputs x 2 prompts x 8 tokens, 3.2 ms
    config = configs(tmp_path, tiny_model_path, budget_s=100.0, seconds_per_answer_token=1e-4)
    budgets = []

    def recording(dataset, config, task_format):
        budgets.append(config.time_budget_s)
        return fine_tune_at_test_time(dataset, config, task_format)

    monkeypatch.setattr("arc24_lib.test_time.fine_tune_at_test_time", recording)
    first, second = solve_tasks(tasks, config)
    assert first["inference_reserve_s"] == pytest.approx(32e-4, abs=1e-3)
    assert budgets[0] == pytest.approx(100.0, abs=0.5)
    measured = first["inference_seconds"] / 32  # slower than configured: the first task's pace raises it
    assert measured > 1e-4 and second["inference_reserve_s"] == pytest.approx(16 * measured, rel=0.05, abs=2e-3)
    assert budgets[1] == pytest.approx(100.0 - 16 * measured, abs=0.5)


def test_planned_tokens_given_by_the_caller_set_the_reserve(tmp_path, tiny_model_path, arc1_training, tiny_backend):
    config = replace(configs(tmp_path, tiny_model_path, augmented_scoring=False), test_time=None)
    counted = solve_task(arc1_training["6150a2bd"], config, tiny_backend)["inference_reserve_s"]
    assert counted == pytest.approx(16 * 1.25 * GENERATOR_COST["greedy"])  # 1 test input x 2 prompts x 8 tokens
    given = solve_task(arc1_training["6150a2bd"], config, tiny_backend, planned_tokens=100)
    assert given["inference_reserve_s"] == pytest.approx(100 * 1.25 * GENERATOR_COST["greedy"])


def test_the_pace_keeps_the_slowest_task_and_never_falls_below_the_configured_one():
    pace = Pace(seconds_per_answer_token=0.04)
    assert pace.inference_s(500, "greedy") == pytest.approx(20.0)
    pace.observe(5.0, 500, "greedy")  # faster than configured: an easy task says little about the next
    assert pace.inference_s(500, "greedy") == pytest.approx(20.0)
    pace.observe(30.0, 500, "greedy")
    pace.observe(10.0, 500, "greedy")
    assert pace.inference_s(100, "greedy") == pytest.approx(6.0)
    pace.observe(1.0, 0, "greedy")  # nothing planned: nothing learned
    assert pace.seconds_per_answer_token == pytest.approx(0.06)
    # a search costs more per token, and what it measured is kept at greedy's pace
    assert pace.inference_s(100, "dfs") == pytest.approx(6.0 * GENERATOR_COST["dfs"])
    pace.observe(100 * 0.1 * GENERATOR_COST["dfs"], 100, "dfs")
    assert pace.seconds_per_answer_token == pytest.approx(0.1)
    with pytest.raises(ValueError, match="positive"):
        Pace(seconds_per_answer_token=0.0)


def test_solve_task_without_time_to_train_predicts_with_the_start_adapter(tmp_path, tiny_model_path, arc1_training,
                                                                          tiny_backend):
    task = arc1_training["6150a2bd"]  # one test input: 2 prompts x 8 tokens at 0.5 s reserve 8 s of the 9
    config = configs(tmp_path, tiny_model_path, budget_s=9.0, seconds_per_answer_token=0.5, augmented_scoring=False)
    result = solve_task(task, config, tiny_backend)
    assert result["ttt"] == "not_run" and result["inference"] == "done" and result["steps"] == 0
    assert result["predictions_per_test_input"] == 2
    assert not (tmp_path / "ttt" / task.task_id).exists() and not (tmp_path / "inference" / "scores.jsonl").exists()
    assert len(read_records(tmp_path / "inference" / "predictions.jsonl")) == 2
    untrained = replace(config, test_time=None, budget_s=None)
    assert solve_task(task, untrained, tiny_backend)["ttt"] == "not_run"  # no test-time training asked


def test_a_failing_stage_is_reported_and_the_task_goes_on(tmp_path, tiny_model_path, arc1_training, tiny_backend):
    task = arc1_training["6150a2bd"]
    config = configs(tmp_path, tiny_model_path)
    failures = []

    def fail_training(stage):
        if stage == "ttt":
            raise RuntimeError("out of memory")

    result = solve_task(task, config, tiny_backend, before_stage=fail_training,
                        on_failure=lambda what, error: failures.append((what, str(error))))
    assert result["ttt"] == "failed" and result["inference"] == "done" and isinstance(result["solved"], bool)
    assert failures == [("task 6150a2bd: test-time training failed", "out of memory")]

    def fail_inference(stage):
        if stage == "inference":
            raise RuntimeError("engine died")

    other = arc1_training["0d3d703e"]
    result = solve_task(other, replace(config, test_time=None), tiny_backend, before_stage=fail_inference,
                        on_failure=lambda what, error: failures.append((what, str(error))))
    assert result["inference"] == "failed" and result["solved"] is False and result["pass_n"] == 0.0
    assert failures[-1] == ("task 0d3d703e: inference failed", "engine died")


def test_solve_task_ends_inference_at_the_tasks_budget_and_still_selects(tmp_path, tiny_model_path, arc1_training,
                                                                         tiny_backend):
    """One slow task cannot eat the next tasks' time: past the budget each test input gets only its first
    prediction, the task says it was cut, and it is still answered from what was predicted."""
    task = arc1_training["44f52bb0"]  # two test inputs

    class Slow:  # the real tiny backend, 0.6 s slower per generation call
        def __getattr__(self, name):
            return getattr(tiny_backend, name)

        def generate(self, *args, **kwargs):
            time.sleep(0.6)
            return tiny_backend.generate(*args, **kwargs)

    config = replace(configs(tmp_path, tiny_model_path, budget_s=1.0, seconds_per_answer_token=1e-4,
                             predictions_per_test_input=4, prompts_per_call=1, augmented_scoring=False), test_time=None)
    result = solve_task(task, config, Slow())
    made = sorted((r["test_index"], r["augmentation_index"]) for r in read_records(tmp_path / "inference" /
                                                                                    "predictions.jsonl"))
    assert made == [(0, 0), (1, 0)] and result["inference_cut"] and result["inference"] == "done"
    assert result["seconds"] < 1.0 + 2 * 0.6 + 1.0 and isinstance(result["solved"], bool)
    unlimited = replace(config, budget_s=None, inference=replace(config.inference, output_dir=str(tmp_path / "all")))
    result = solve_task(task, unlimited, Slow())
    assert len(read_records(tmp_path / "all" / "predictions.jsonl")) == 8 and not result["inference_cut"]


@pytest.mark.parametrize(("budget_s", "made"), [(0.0, 1), (2.0, 1), (4.0, 2), (7.0, 3), (30.0, 4)])
def test_a_task_whose_time_left_holds_less_than_its_reserve_makes_that_share_of_its_predictions(
        tmp_path, tiny_model_path, arc1_training, tiny_backend, budget_s, made):
    """A task that starts late (a replacement worker near the deadline) plans what fits: 4 prompts x 8 tokens at
    0.3125 s reserve 10 s for the one test input, so 2.5 s buys a prediction, rounded up, and one is always made."""
    task = arc1_training["6150a2bd"]
    config = replace(configs(tmp_path, tiny_model_path, budget_s=budget_s, seconds_per_answer_token=0.3125,
                             predictions_per_test_input=4, augmented_scoring=False), test_time=None)
    result = solve_task(task, config, tiny_backend)
    assert result["inference_reserve_s"] == pytest.approx(10.0 * GENERATOR_COST["greedy"])
    records = read_records(tmp_path / "inference" / "predictions.jsonl")
    assert result["predictions_per_test_input"] == made and len(records) == made
    assert sorted(r["augmentation_index"] for r in records) == list(range(made))
