"""The competition notebook end to end on CPU against a fake competition folder built from real ARC data."""

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
from papermill.exceptions import PapermillExecutionError

from arc24_lib.config import config_from_dict
from arc24_lib.data import load_builtin, load_dataset, save_dataset
from arc24_lib.kaggle.install import RERUN_VARIABLE, RunStopped, write_fallback_submission
from arc24_lib.kaggle.run import KaggleRunConfig, check_run, finish_run, run_submission, tokens_per_prediction
from arc24_lib.kaggle.workers import FAULTS_VARIABLE
from arc24_lib.models import load_tokenizer
from arc24_lib.notebooks import run_notebook
from arc24_lib.partitions import smallest_tasks
from arc24_lib.planning import Pace, plan_budget, planned_answer_tokens, task_budget_s
from arc24_lib.submission import NO_ANSWER, validate_submission

SECRET = "sk-fake-kaggle-secret-0123456789"


@pytest.fixture
def competition(tmp_path):
    """/kaggle/input/<competition>/arc-agi_test_challenges.json: small real tasks, no solutions (ARC-AGI-1
    training: the smallest evaluation tasks are kept aside for measurement)."""
    tasks = smallest_tasks(load_builtin("arc-agi-1/training"), 4)
    hidden = tasks.without_solutions("test")
    path = save_dataset(hidden, tmp_path / "input" / "arc-prize" / "arc-agi_test_challenges.json",
                        with_solutions=False)
    return path


def settings(tmp_path, competition, model_path, backend="vllm", max_steps=2, **overrides):
    """KaggleRunConfig values for a short run on the tiny model (`max_steps` 0: no test-time training)."""
    test_time = {"max_steps": max_steps, "max_seq_len": 2048, "lora_r": 4} if max_steps else None
    values = dict(challenges_path=str(competition), submission_path=str(tmp_path / "working" / "submission.json"),
                  work_dir=str(tmp_path / "working" / "arc24"), task_format={"model_path": str(model_path)},
                  deadline_s=900.0,
                  run_mode="full", expect_gpu=False,
                  pace={"seconds_per_step": 0.2, "seconds_per_answer_token": 0.002, "startup_s": 30.0},
                  test_time=test_time,
                  inference={"backend": backend, "predictions_per_test_input": 2, "max_seq_len": 2048})
    values.update(overrides)
    return values


def run_config(values):
    return config_from_dict(KaggleRunConfig, values)


def notebook(tmp_path, values, wheelhouse_dir=None):
    parameters = {**values, "library_dir": str(tmp_path / "no-library"), "wheelhouse_dir": wheelhouse_dir}
    return run_notebook("kaggle_submission", parameters, tmp_path / "executed", progress_bar=False)


def test_a_competition_rerun_goes_on_past_every_problem_and_names_each_in_the_summary(tmp_path, competition,
                                                                                   tiny_model_path, monkeypatch):
    # a wheelhouse that is not there, no GPU for a GPU kernel, and vllm asked for where it is not installed
    monkeypatch.setenv(RERUN_VARIABLE, "True")
    monkeypatch.setenv("KAGGLE_KEY", SECRET)
    monkeypatch.setenv(FAULTS_VARIABLE, "")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin")  # no nvidia-smi
    values = settings(tmp_path, competition, tiny_model_path, run_mode="auto", expect_gpu=True)
    executed = notebook(tmp_path, values, wheelhouse_dir=str(tmp_path / "none"))
    submission = json.loads((tmp_path / "working" / "submission.json").read_text())
    dataset = load_dataset(competition)
    assert validate_submission(submission, dataset) == []
    predictions = list((tmp_path / "working" / "arc24").glob("inference_*/predictions.jsonl"))
    assert predictions and sum(len(p.read_text().splitlines()) for p in predictions) == \
        2 * sum(len(t.test) for t in dataset)
    log = (tmp_path / "working" / "arc24" / "run.log").read_text()
    assert "vllm is not installed" in log and "falling back to the hf backend" in log
    assert "Traceback" not in log
    notebook_text = executed.read_text()
    assert "full run: answered by the model 4 of 4 tasks" in notebook_text  # auto in a rerun: every task
    assert SECRET not in notebook_text and SECRET not in log
    degraded = json.loads((tmp_path / "working" / "arc24" / "summary.json").read_text())["degraded"]
    assert "nvidia-smi shows none" in degraded[0] and "no wheelhouse at" in degraded[1]  # GPU checked first
    assert "asked for the vllm backend but used ['hf']" in degraded[2]
    assert degraded[3:] == [next(d for d in degraded if "no answer parsed as a grid" in d)]  # the tiny random model
    outputs = [o for c in nbformat.read(executed, as_version=4).cells for o in c.get("outputs", [])]
    assert any("degraded: [\"the kernel asks for a GPU" in o.get("text", "") for o in outputs)


@pytest.mark.parametrize("problem", ["wheelhouse", "gpu"])
def test_a_push_run_stops_before_the_run_on_a_broken_wheelhouse_or_a_missing_gpu(tmp_path, competition,
                                                                                  tiny_model_path, monkeypatch,
                                                                                  problem):
    monkeypatch.delenv(RERUN_VARIABLE, raising=False)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin")  # no nvidia-smi
    values = settings(tmp_path, competition, tiny_model_path, backend="hf", expect_gpu=problem == "gpu")
    message = "no wheelhouse at" if problem == "wheelhouse" else "nvidia-smi shows none"
    with pytest.raises(PapermillExecutionError, match=f"(?s)RunStopped.*{message}"):
        notebook(tmp_path, values, wheelhouse_dir=str(tmp_path / "none") if problem == "wheelhouse" else None)
    submission = json.loads((tmp_path / "working" / "submission.json").read_text())
    assert validate_submission(submission, load_dataset(competition)) == []  # the fallback, written first
    assert not (tmp_path / "working" / "arc24" / "run.log").exists()  # stopped before any GPU time was spent


def test_a_push_run_stops_on_a_backend_fallback_after_writing_its_submission(tmp_path, competition,
                                                                           tiny_model_path, monkeypatch):
    monkeypatch.delenv(RERUN_VARIABLE, raising=False)
    config = run_config(settings(tmp_path, competition, tiny_model_path, backend="vllm", max_steps=0,
                                 run_mode="smoke", smoke_tasks=1))
    summary = run_submission(config)  # vllm is not installed here: the hf backend answers
    assert summary["mode"] == "smoke" and summary["backends_used"] == ["hf"]
    with pytest.raises(RunStopped, match="asked for the vllm backend but used"):
        finish_run(config, summary, [])
    saved = json.loads((tmp_path / "working" / "arc24" / "summary.json").read_text())
    assert saved["degraded"] == [] and saved["answered"] == 1
    monkeypatch.setenv(RERUN_VARIABLE, "True")
    assert "vllm backend" in finish_run(config, summary, [])["degraded"][0]


def test_an_invalid_submission_raises(tmp_path, competition, tiny_model_path):
    config = run_config(settings(tmp_path, competition, tiny_model_path, backend="hf"))
    submission = write_fallback_submission(competition, config.submission_path)
    assert submission == 4
    path = tmp_path / "working" / "submission.json"
    broken = json.loads(path.read_text())
    broken.pop(sorted(broken)[0])
    path.write_text(json.dumps(broken))
    summary = {"tasks": 4, "answered": 4, "with_grid": 4, "backend": "hf", "backends_used": ["hf"],
               "worker_deaths": [], "failed": []}
    with pytest.raises(ValueError, match="would not score"):
        finish_run(config, summary, [])


def test_outside_a_rerun_auto_mode_runs_a_smoke_and_says_so(tmp_path, competition, tiny_model_path, monkeypatch):
    monkeypatch.delenv(RERUN_VARIABLE, raising=False)
    monkeypatch.setenv(FAULTS_VARIABLE, "")
    config = run_config(settings(tmp_path, competition, tiny_model_path, backend="hf", max_steps=0,
                                 run_mode="auto", smoke_tasks=2, smoke_deadline_s=600.0))
    assert config.smoke
    summary = run_submission(config)
    assert summary["mode"] == "smoke" and summary["tasks"] == 4 and summary["tasks_chosen"] == 2
    assert summary["tasks_processed"] == 2 and summary["not_run"] == []
    log = (tmp_path / "working" / "arc24" / "run.log").read_text()
    assert "SMOKE RUN (run_mode auto, not a competition rerun): 2 of 4 tasks, deadline 600 s" in log
    submission = json.loads((tmp_path / "working" / "submission.json").read_text())
    assert validate_submission(submission, load_dataset(competition)) == []  # every task still has entries
    monkeypatch.setenv(RERUN_VARIABLE, "True")
    assert not config.smoke and run_config(settings(tmp_path, competition, tiny_model_path, run_mode="smoke")).smoke
    with pytest.raises(ValueError, match="run_mode is 'quick'"):
        run_config(settings(tmp_path, competition, tiny_model_path, run_mode="quick"))


def test_faults_in_training_and_inference_still_submit_every_task(tmp_path, competition, tiny_model_path,
                                                                  monkeypatch):
    ids = load_dataset(competition).task_ids
    monkeypatch.setenv(FAULTS_VARIABLE, f"ttt={ids[0]};inference={ids[1]}")
    summary = run_submission(run_config(settings(tmp_path, competition, tiny_model_path, backend="hf")))
    submission = json.loads((tmp_path / "working" / "submission.json").read_text())
    assert validate_submission(submission, load_dataset(competition)) == []
    assert set(summary["failed"]) == {ids[0], ids[1]}
    assert all(entry["attempt_1"] == NO_ANSWER for entry in submission[ids[1]])  # its inference failed
    log = (tmp_path / "working" / "arc24" / "run.log").read_text()
    assert f"task {ids[0]}: test-time training failed" in log and f"task {ids[1]}: inference failed" in log


def test_deadline_mid_run_keeps_a_valid_submission(tmp_path, competition, tiny_model_path, monkeypatch):
    monkeypatch.setenv(FAULTS_VARIABLE, "")
    # a plan of ~100 s per task but a deadline of 60 s: the first task runs, the rest keep the fallback
    values = settings(tmp_path, competition, tiny_model_path, backend="hf", deadline_s=60.0,
                      max_steps=400, per_task_cap_s=8.0)
    summary = run_submission(run_config(values))
    submission = json.loads((tmp_path / "working" / "submission.json").read_text())
    assert validate_submission(submission, load_dataset(competition)) == []
    assert 1 <= summary["tasks_processed"] < len(submission) or summary["seconds"] < 60
    log = (tmp_path / "working" / "arc24" / "run.log").read_text()
    assert summary["tasks_processed"] == len(submission) or "deadline near" in log


def test_unreadable_task_gets_fallback_entries(tmp_path, competition, tiny_model_path, monkeypatch):
    monkeypatch.setenv(FAULTS_VARIABLE, "")
    raw = json.loads(competition.read_text())
    raw["broken01"] = {"train": [{"input": [[1, 11]], "output": [[1]]}], "test": [{"input": [[1]]}, {"input": [[2]]}]}
    competition.write_text(json.dumps(raw))
    run_submission(run_config(settings(tmp_path, competition, tiny_model_path, backend="hf", max_steps=0)))
    submission = json.loads((tmp_path / "working" / "submission.json").read_text())
    assert submission["broken01"] == [{"attempt_1": NO_ANSWER, "attempt_2": NO_ANSWER}] * 2
    assert set(submission) == set(raw)


def test_plan_budget_fits_the_deadline_and_shrinks_predictions_first():
    gpu, tokens = Pace(seconds_per_step=0.6, seconds_per_answer_token=0.001, startup_s=120.0), 800
    roomy = plan_budget(120, 2, 11 * 3600, gpu, tokens)
    assert roomy.fits and roomy.predictions_per_test_input == 32 and roomy.steps_per_task == 300
    # 240 tasks in 3 h on one GPU: ~35 s per task; 32 predictions would leave too little for 50 steps
    tight = plan_budget(240, 1, 3 * 3600, gpu, tokens, min_steps=50)
    assert tight.fits and tight.planned_seconds <= 3 * 3600
    assert tight.steps_per_task >= 50 and 2 <= tight.predictions_per_test_input < 32
    hopeless = plan_budget(1000, 1, 600, Pace(seconds_per_step=1.0, seconds_per_answer_token=0.01), tokens,
                           min_steps=10)
    assert not hopeless.fits
    more_gpus = plan_budget(240, 4, 3 * 3600, gpu, tokens, min_steps=50)
    assert more_gpus.steps_per_task > tight.steps_per_task
    with pytest.raises(ValueError, match="n_tasks 0"):
        plan_budget(0, 1, 100, gpu, tokens)


def test_the_plan_and_each_tasks_reserve_price_inference_with_one_pace(tmp_path, competition, tiny_model_path):
    """The plan prices a prediction by the tasks' planned answer tokens at the pace, and so does each task's
    reserve in the worker: one time model, whose generator cost and longer answers both count."""
    gpu, tokens = Pace(seconds_per_step=0.6, seconds_per_answer_token=0.001, startup_s=120.0), 800
    greedy = plan_budget(240, 1, 3 * 3600, gpu, tokens, min_steps=50)
    search = plan_budget(240, 1, 3 * 3600, gpu, tokens, generator="dfs", min_steps=50)
    longer = plan_budget(240, 1, 3 * 3600, gpu, 2 * tokens, min_steps=50)
    assert search.fits and longer.fits
    assert search.predictions_per_test_input < greedy.predictions_per_test_input
    assert longer.predictions_per_test_input < greedy.predictions_per_test_input
    # a plan blind to the search's cost misses the deadline once it searches
    actual_s = greedy.steps_per_task * 0.6 + gpu.inference_s(greedy.predictions_per_test_input * tokens, "dfs") + 10
    assert 120 + greedy.tasks_per_worker * actual_s > 3 * 3600 >= search.planned_seconds
    # the worker's reserve for a task is its own planned tokens at the same pace
    config = run_config(settings(tmp_path, competition, tiny_model_path, backend="hf"))
    dataset = load_dataset(competition)
    plan = plan_budget(len(dataset), 1, config.deadline_s, config.pace, tokens_per_prediction(config, list(dataset)),
                       max_steps=2, max_predictions=config.inference.predictions_per_test_input)
    solve = config.solve_config(plan, "hf", 0, plan.seconds_per_task)
    assert solve.pace == config.pace and solve.budget_s == plan.seconds_per_task
    tokenizer, task = load_tokenizer(str(tiny_model_path)), dataset[dataset.task_ids[0]]
    one = planned_answer_tokens(task, replace(solve.inference, predictions_per_test_input=1), solve.task_format,
                                tokenizer)
    assert planned_answer_tokens(task, solve.inference, solve.task_format, tokenizer) == \
        plan.predictions_per_test_input * one and one > 0
    # each task's share keeps the planned training time and adds its own inference: larger grids, a larger share
    tokens = {t.task_id: planned_answer_tokens(t, solve.inference, solve.task_format, tokenizer) for t in dataset}
    shares = {t: task_budget_s(plan, config.pace, n, "greedy") for t, n in tokens.items()}
    small, large = min(tokens, key=tokens.get), max(tokens, key=tokens.get)
    assert tokens[small] < tokens[large] and shares[small] < shares[large]
    for task_id, share in shares.items():
        assert share - solve.pace.inference_s(tokens[task_id], "greedy") == pytest.approx(
            plan.steps_per_task * 0.2 + config.pace.overhead_per_task_s)


def test_the_built_kernel_runs_the_submission_notebook_offline_on_a_gpu(tmp_path):
    from arc24_lib.kaggle.datasets import build_kernel
    from arc24_lib.kaggle.metadata import validate_kernel_metadata

    meta = build_kernel(tmp_path / "kernel", "some-user").metadata
    assert validate_kernel_metadata(meta, tmp_path / "kernel") == []
    assert meta["enable_internet"] is False and meta["enable_gpu"] is True and meta["kernel_type"] == "notebook"
    assert meta["code_file"] == "kaggle_submission.ipynb"
    assert meta["competition_sources"] == ["arc-prize-2026-arc-agi-2"]
    assert meta["machine_shape"] == "NvidiaTeslaT4"


def test_two_workers_share_the_task_queue(tmp_path, competition, tiny_model_path, monkeypatch):
    monkeypatch.setenv(FAULTS_VARIABLE, "")
    values = settings(tmp_path, competition, tiny_model_path, backend="hf", n_workers=2)
    summary = run_submission(run_config(values))
    lines = (tmp_path / "working" / "arc24" / "task_results.jsonl").read_text().splitlines()
    results = [json.loads(line) for line in lines]
    assert summary["workers"] == 2
    assert sorted(r["task_id"] for r in results) == sorted(load_dataset(competition).task_ids)
    assert len({r["worker"] for r in results}) == 2  # both workers took tasks
    submission = json.loads((tmp_path / "working" / "submission.json").read_text())
    assert validate_submission(submission, load_dataset(competition)) == []


def test_a_run_without_any_answer_fails_the_notebook_after_writing_the_fallback(tmp_path, competition,
                                                                                tiny_model_path, monkeypatch):
    # every worker dies before it has a backend: the old notebook finished "successfully" on an all-[[0]] file
    monkeypatch.setenv(FAULTS_VARIABLE, "backend=all")
    values = settings(tmp_path, competition, tiny_model_path, backend="hf", max_worker_restarts=1)
    with pytest.raises(PapermillExecutionError, match="no task of 4 got an answer from the model"):
        notebook(tmp_path, values)
    submission = json.loads((tmp_path / "working" / "submission.json").read_text())
    assert validate_submission(submission, load_dataset(competition)) == []  # still a valid file to submit
    log = (tmp_path / "working" / "arc24" / "run.log").read_text()
    assert log.count("injected backend fault in worker 0") == 2  # the worker and its one replacement
    assert "worker 0 restarted (1 of 1)" in log and "Traceback" not in log


def test_a_killed_worker_is_replaced_and_the_rest_of_the_tasks_are_answered(tmp_path, competition,
                                                                            tiny_model_path, monkeypatch):
    ids = load_dataset(competition).task_ids
    monkeypatch.setenv(FAULTS_VARIABLE, f"crash={ids[1]}")  # SIGKILL while on the second task, as an OOM kill
    summary = run_submission(run_config(settings(tmp_path, competition, tiny_model_path, backend="hf")))
    assert summary["worker_deaths"] == [{"worker": 0, "exitcode": -9}]
    assert summary["tasks_processed"] == 3 and summary["answered"] == 3
    check_run(summary)  # answers from the model: no failure
    submission = json.loads((tmp_path / "working" / "submission.json").read_text())
    assert validate_submission(submission, load_dataset(competition)) == []
    assert all(entry["attempt_1"] == NO_ANSWER for entry in submission[ids[1]])
    log = (tmp_path / "working" / "arc24" / "run.log").read_text()
    assert "worker 0 died (signal SIGKILL)" in log and "worker 0 restarted (1 of 2)" in log


def test_test_time_training_and_inference_start_from_the_model_folders_adapter(tmp_path, competition,
                                                                                tiny_model_path, monkeypatch):
    # the model dataset is "a base model with an adapter/ subfolder"; the old run never looked there
    from arc24_lib.training import TrainingOptions, prepare_model

    model = tmp_path / "model"
    shutil.copytree(tiny_model_path, model)
    prepare_model(TrainingOptions(lora_r=2), "cpu", str(model)).save_pretrained(model / "adapter")
    ids = load_dataset(competition).task_ids
    monkeypatch.setenv(FAULTS_VARIABLE, f"ttt={ids[0]}")
    values = settings(tmp_path, competition, model, backend="hf", n_workers=1)
    assert run_config(values).start_adapter == str(model / "adapter")
    summary = run_submission(run_config(values))
    assert summary["answered"] == 4
    adapters = tmp_path / "working" / "arc24" / "adapters"
    assert json.loads((adapters / "task_format.json").read_text())["adapter_path"] == str(model / "adapter")
    for task_id in ids[1:]:  # trained on from the shipped rank-2 adapter, not a new rank-4 one
        assert json.loads((adapters / task_id / "adapter_config.json").read_text())["r"] == 2
    inference = json.loads((tmp_path / "working" / "arc24" / "inference_0" / "task_format.json").read_text())
    assert inference["adapter_path"] == str(model / "adapter")  # what a task without its own adapter gets


def test_an_unknown_fault_stage_is_refused(monkeypatch):
    from arc24_lib.kaggle.workers import faults

    monkeypatch.setenv(FAULTS_VARIABLE, "ttt=a;trian=b")
    with pytest.raises(ValueError, match="trian"):
        faults("ttt")


def test_a_killed_rewrite_leaves_the_previous_file_and_a_rerun_resumes(tmp_path, competition, tiny_model_path,
                                                                      monkeypatch):
    ids = load_dataset(competition).task_ids
    # the worker dies between writing the new submission.json and putting it in place, after the second task
    monkeypatch.setenv(FAULTS_VARIABLE, f"rewrite={ids[1]}")
    values = settings(tmp_path, competition, tiny_model_path, backend="hf", max_worker_restarts=0)
    first = run_submission(run_config(values))
    working = tmp_path / "working"
    submission = json.loads((working / "submission.json").read_text())
    assert first["worker_deaths"] == [{"worker": 0, "exitcode": -9}] and first["tasks_processed"] == 1
    assert validate_submission(submission, load_dataset(competition)) == []
    assert submission[ids[0]][0]["attempt_1"] != NO_ANSWER or first["with_grid"] == 0
    predictions = working / "arc24" / "inference_0" / "predictions.jsonl"
    before = predictions.read_text().splitlines()
    monkeypatch.setenv(FAULTS_VARIABLE, "")
    second = run_submission(run_config(values))
    assert second["tasks_processed"] == len(ids) and second["worker_deaths"] == []
    assert not list(working.glob("submission.json*.tmp"))  # the killed rewrite's leftover is cleared
    log = (working / "arc24" / "run.log").read_text()
    assert "resuming the run" in log and "1 tasks finished before, 3 to do" in log
    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    keys = [(r["task_id"], r["test_index"], r["augmentation_index"]) for r in records]
    assert len(keys) == len(set(keys)) and [json.loads(line) for line in before] == records[:len(before)]
    results = [json.loads(line)["task_id"] for line in (working / "arc24" / "task_results.jsonl").read_text()
               .splitlines()]
    assert sorted(results) == sorted(ids)  # every task once: the first was not solved again


def test_a_real_zero_answer_stays_when_combined_with_a_second_submission(tmp_path, competition, tiny_model_path):
    from arc24_lib.files import JsonlWriter
    from arc24_lib.kaggle.run import rewrite_submission
    from arc24_lib.submission import build_submission

    dataset = load_dataset(competition)
    task = dataset.task_ids[0]
    second = tmp_path / "second.json"
    second.write_text(json.dumps(build_submission(dataset, {task: [[[[5]], [[6]]]] * len(dataset[task].test)})))
    values = settings(tmp_path, competition, tiny_model_path, second_submission_path=str(second))
    with JsonlWriter(tmp_path / "working" / "arc24" / "inference_0" / "predictions.jsonl") as writer:
        writer.write([{"task_id": task, "test_index": i, "augmentation_index": 0, "grid": [[0]],
                       "cumulative_logprob": -0.1, "n_tokens": 2} for i in range(len(dataset[task].test))])
    for mode in ("fill_gaps", "first_attempts"):
        submission = rewrite_submission(run_config({**values, "combine_mode": mode}), dataset, unreadable={})
        assert submission[task][0] == {"attempt_1": [[0]], "attempt_2": [[5]]}, mode  # ours is an answer
        assert submission[dataset.task_ids[1]][0] == {"attempt_1": NO_ANSWER, "attempt_2": NO_ANSWER}


def test_a_challenges_file_that_cannot_be_read_at_all_stops_the_run_naming_it(tmp_path, competition,
                                                                             tiny_model_path):
    from arc24_lib.data import ARCDataError
    from arc24_lib.kaggle.run import fallback_submission

    competition.write_bytes(b"\xef\xbb\xbf" + competition.read_bytes())  # a byte-order mark is fine
    config = run_config(settings(tmp_path, competition, tiny_model_path))
    fallback_submission(config)
    submission = json.loads((tmp_path / "working" / "submission.json").read_text())
    assert set(submission) == set(load_dataset(competition).task_ids)
    competition.write_text('{"truncated": ')
    with pytest.raises(ARCDataError, match="arc-agi_test_challenges.json: invalid JSON"):
        fallback_submission(config)

