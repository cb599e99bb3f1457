import json
import time
from pathlib import Path

import numpy as np
import pytest

from arc24_lib.data import Dataset, Example, Task
from arc24_lib.encoders import DEFAULT_ENCODER, parse_encoder
from arc24_lib.models import load_model, load_tokenizer
from arc24_lib.partitions import subset_by_ids
from arc24_lib.prompting import create_prompt, parse_answer
from arc24_lib.test_time import SUMMARY_FILE, TestTimeConfig, fine_tune_at_test_time


def tiny_config(tmp_path, model_path, **overrides):
    values = dict(model_path=str(model_path), output_dir=str(tmp_path / "ttt"), max_steps=6, lora_r=4,
                  learning_rate=1e-3, logging_steps=1, max_seq_len=1024)
    values.update(overrides)
    return TestTimeConfig(**values)


def test_ttt_adapter_per_task_skips_untrainable_and_resumes(tmp_path, tiny_model_path, arc1_training):
    one_pair = arc1_training["6150a2bd"]
    one_pair = Task("one-pair", one_pair.train[:1], [Example(one_pair.test[0].input)])
    huge = Task("huge", [Example(np.zeros((30, 30), int), np.ones((30, 30), int))] * 3,
                [Example(np.zeros((30, 30), int))])
    tasks = {t.task_id: t for t in [arc1_training["0d3d703e"].without_solutions(), one_pair, huge]}
    results = fine_tune_at_test_time(Dataset("mixed", tasks), tiny_config(tmp_path, tiny_model_path))
    by_id = {r["task_id"]: r for r in results}
    assert by_id["0d3d703e"]["status"] == "trained" and by_id["0d3d703e"]["steps"] == 6
    assert by_id["one-pair"]["status"] == "skipped" and "only 1 train pairs" in by_id["one-pair"]["reason"]
    assert by_id["huge"]["status"] == "skipped" and "fits max_seq_len" in by_id["huge"]["reason"]
    adapter = tmp_path / "ttt" / "0d3d703e"
    assert (adapter / "adapter_model.safetensors").exists() and (adapter / "tokenizer_config.json").exists()
    assert load_model(tiny_model_path, adapter, device="cpu") is not None
    lines = (tmp_path / "ttt" / SUMMARY_FILE).read_text().splitlines()
    assert [json.loads(line)["task_id"] for line in lines] == list(tasks)
    # a rerun keeps finished tasks and trains nothing again
    started = time.perf_counter()
    again = fine_tune_at_test_time(Dataset("mixed", tasks), tiny_config(tmp_path, tiny_model_path))
    assert again == results and time.perf_counter() - started < 5
    assert len((tmp_path / "ttt" / SUMMARY_FILE).read_text().splitlines()) == 3


def test_ttt_stops_at_time_budget_and_at_low_loss(tmp_path, tiny_model_path, arc1_training):
    tasks = subset_by_ids(arc1_training, ["0d3d703e"])
    timed = fine_tune_at_test_time(tasks, tiny_config(tmp_path / "a", tiny_model_path, max_steps=10_000,
                                                   time_budget_s=2.0))[0]
    assert timed["stop_reason"] == "time_budget" and 0 < timed["steps"] < 10_000
    assert timed["seconds"] < 2.0 + 1.0  # the budget counts the setup and no step ends past it; saving is outside
    early = fine_tune_at_test_time(tasks, tiny_config(tmp_path / "b", tiny_model_path, max_steps=50,
                                                   early_stop_loss=100.0))[0]
    assert early["stop_reason"] == "early_stop_loss" and early["steps"] == 1
    window = fine_tune_at_test_time(tasks, tiny_config(tmp_path / "c", tiny_model_path, max_steps=50,
                                                    early_stop_loss=100.0, early_stop_window=4))[0]
    assert window["steps"] == 4  # the mean of 4 logged losses, one per step
    with pytest.raises(ValueError, match="early_stop_window"):
        TestTimeConfig(early_stop_window=0)


def test_decay_over_budget_follows_the_larger_of_step_and_time_shares():
    from arc24_lib.test_time import budget_progress, cosine_rate

    assert budget_progress(5, 10, elapsed_s=1.0, time_budget_s=None) == 0.5
    assert budget_progress(5, 10, elapsed_s=8.0, time_budget_s=10.0) == 0.8  # the clock runs out first
    assert budget_progress(9, 10, elapsed_s=1.0, time_budget_s=10.0) == 0.9
    assert budget_progress(12, 10, elapsed_s=30.0, time_budget_s=10.0) == 1.0
    assert cosine_rate(1e-3, 0.0, 0.1) == pytest.approx(1e-3)
    assert cosine_rate(1e-3, 0.5, 0.1) == pytest.approx(0.55e-3)
    assert cosine_rate(1e-3, 1.0, 0.1) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="decay_floor"):
        TestTimeConfig(decay_floor=1.5)


@pytest.mark.parametrize("decay", [True, False])
def test_decay_over_budget_sets_the_rate_each_optimizer_step_uses_and_logs(tmp_path, tiny_model_path, arc1_training,
                                                                           decay):
    from transformers import TrainerCallback

    from arc24_lib.partitions import leave_one_out
    from arc24_lib.samples import SampleSource, TrainingSamples
    from arc24_lib.test_time import budget_callback, budget_lr_multiplier, cosine_rate
    from arc24_lib.training import make_trainer, prepare_model, training_arguments

    config = tiny_config(tmp_path, tiny_model_path, max_steps=5, decay_over_budget=decay, decay_floor=0.1,
                         time_budget_s=600.0)
    tokenizer = load_tokenizer(tiny_model_path)
    forms = leave_one_out(arc1_training["0d3d703e"])
    samples = TrainingSamples([SampleSource(forms, config.prompt_version)], parse_encoder(config.grid_encoder),
                              tokenizer, config.max_seq_len, seed=0)
    used = []

    class RateRecorder(TrainerCallback):
        def on_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
            used.append(optimizer.param_groups[0]["lr"])

    trainer = make_trainer(prepare_model(config, "cpu"), tokenizer,
                           training_arguments(config, tmp_path / "trainer", "cpu", disable_tqdm=True), samples,
                           callbacks=[budget_callback(config), RateRecorder()],
                           lr_multiplier=budget_lr_multiplier(config) if decay else None)
    trainer.train()
    # a 600 s budget is barely touched in 5 steps, so the step share rules
    expected = [cosine_rate(1e-3, step / 5, 0.1) if decay else 1e-3 for step in range(5)]
    assert used == pytest.approx(expected, rel=0.02)
    # the Trainer's own log shows the rate each step used (it is the Trainer's scheduler)
    logged = [entry["learning_rate"] for entry in trainer.state.log_history if "learning_rate" in entry]
    assert logged == pytest.approx(expected, rel=0.02)


def test_ttt_shared_adapter_for_all_tasks(tmp_path, tiny_model_path, arc1_training):
    tasks = subset_by_ids(arc1_training, ["0d3d703e", "6150a2bd"])
    results = fine_tune_at_test_time(tasks, tiny_config(tmp_path, tiny_model_path, shared_adapter=True))
    assert [r["task_id"] for r in results] == ["shared"] and results[0]["steps"] == 6
    assert (tmp_path / "ttt" / "shared" / "adapter_model.safetensors").exists()


@pytest.mark.slow
def test_ttt_embedded_model_solves_6150a2bd(tmp_path, arc1_training):
    """The real SmolLM2 learns task 6150a2bd (rotate 180°) from its two train pairs alone."""
    task = arc1_training["6150a2bd"]
    config = TestTimeConfig(model_path="embedded", output_dir=str(tmp_path / "ttt"), max_steps=150, lora_r=32,
                            learning_rate=1e-3, max_seq_len=1024, device="cpu")
    result = fine_tune_at_test_time(subset_by_ids(arc1_training, ["6150a2bd"]), config)[0]
    assert result["status"] == "trained" and result["final_loss"] < result["first_loss"] / 4
    tokenizer = load_tokenizer("embedded")
    model = load_model("embedded", result["adapter_path"], device="cpu")
    encoder = parse_encoder(DEFAULT_ENCODER)
    prompt = create_prompt(task.without_solutions(), encoder, config.prompt_version, tokenizer)
    inputs = tokenizer(prompt.text, return_tensors="pt", add_special_tokens=False)
    output = model.generate(**inputs, max_new_tokens=40, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1]:])
    assert np.array_equal(parse_answer(answer, encoder, (tokenizer.eos_token,)), task.test[0].output), answer


def test_solve_tasks_reserves_inference_time_per_test_input_and_reports_each_task(tmp_path, tiny_model_path,
                                                                                   arc1_training, monkeypatch):
    from arc24_lib.inference.airv import InferenceConfig
    from arc24_lib.pipeline import solve_tasks

    tasks = subset_by_ids(arc1_training, ["44f52bb0", "6150a2bd"])  # two test inputs, then one
    assert [len(task.test) for task in tasks] == [2, 1]
    ttt = tiny_config(tmp_path / "ttt", tiny_model_path, max_steps=2)
    inference = InferenceConfig(model_path=str(tiny_model_path), output_dir=str(tmp_path / "inference"),
                                predictions_per_test_input=2, max_new_tokens=8, device="cpu")
    budgets = []

    def recording(dataset, config):  # the real training, with its time budget noted
        budgets.append(config.time_budget_s)
        return fine_tune_at_test_time(dataset, config)

    monkeypatch.setattr("arc24_lib.test_time.fine_tune_at_test_time", recording)
    results = solve_tasks(tasks, ttt, inference, budget_s=100.0, inference_reserve_s=20.0, own_frame_share=0)
    assert budgets == [60.0, 80.0]
    assert [r["task_id"] for r in results] == ["44f52bb0", "6150a2bd"]
    for result in results:
        assert result["ttt_status"] == "trained" and result["steps"] == 2
        assert isinstance(result["solved"], bool) and 0.0 <= result["pass_n"] <= 1.0
        assert result["seconds"] >= result["ttt_seconds"]


def test_expert_metrics_put_the_main_expert_first_and_gate_the_other(arc1_training):
    from arc24_lib.pipeline import _expert_metrics

    task = arc1_training["74dd1130"]
    right = task.test[0].output.tolist()
    wrong, other = np.rot90(right).tolist(), np.flipud(right).tolist()

    def records(grids):
        return [{"task_id": task.task_id, "test_index": 0, "grid": g, "cumulative_logprob": -1.0} for g in grids], {}

    main = records([wrong, wrong, wrong, right, right])  # the right grid is the main expert's second
    unsure = records([other, other, wrong, right])  # its best grid holds 2 of 4 predictions
    sure = records([other, other, other, wrong])  # 3 of 4
    assert _expert_metrics(task, [main, unsure]) == ([True, False], True, 1.0)
    assert _expert_metrics(task, [main, sure]) == ([True, False], False, 1.0)  # a sure wrong grid takes attempt 2


def test_own_frame_expert_trains_first_in_the_task_frame_and_shares_the_attempts(tmp_path, tiny_model_path,
                                                                                   arc1_training, monkeypatch):
    from arc24_lib.augmentation import TaskAugmentation
    from arc24_lib.experts import OWN_FRAME
    from arc24_lib.inference.airv import InferenceConfig, read_predictions
    from arc24_lib.pipeline import solve_tasks

    tasks = subset_by_ids(arc1_training, ["6150a2bd"])
    ttt = tiny_config(tmp_path / "ttt", tiny_model_path, max_steps=2)
    inference = InferenceConfig(model_path=str(tiny_model_path), output_dir=str(tmp_path / "inference"),
                                predictions_per_test_input=4, max_new_tokens=8, device="cpu")
    configs = []

    def recording(dataset, config):  # the real training, with its config noted
        configs.append(config)
        return fine_tune_at_test_time(dataset, config)

    monkeypatch.setattr("arc24_lib.test_time.fine_tune_at_test_time", recording)
    result = solve_tasks(tasks, ttt, inference, budget_s=100.0, inference_reserve_s=20.0, own_frame_share=0.25)[0]
    own, main = configs
    # the own-frame expert: a quarter of what is left once both experts' inference is reserved
    assert own.time_budget_s == pytest.approx(0.25 * (100.0 - 2 * 20.0))
    assert not own.geometric_augmentation and own.permute_colors and main.geometric_augmentation
    assert main.time_budget_s < 100.0 - 20.0 and main.time_budget_s > own.time_budget_s  # the rest, less time spent
    assert Path(own.output_dir) == Path(ttt.output_dir) / OWN_FRAME and (Path(own.output_dir) / "6150a2bd").is_dir()
    own_records = read_predictions(tmp_path / "inference" / OWN_FRAME / "predictions.jsonl")
    main_records = read_predictions(tmp_path / "inference" / "predictions.jsonl")
    assert len(own_records) == len(main_records) == 4
    assert {TaskAugmentation.from_dict(r["augmentation"]).geometry for r in own_records} == {0}
    assert len({TaskAugmentation.from_dict(r["augmentation"]).geometry for r in main_records}) == 4
    assert set(result["experts"]) == {OWN_FRAME, "all_frames"} and result["steps"] == 2
    assert all(isinstance(e["solved"], bool) for e in result["experts"].values())
    with pytest.raises(ValueError, match="own_frame_share is 1.5"):
        solve_tasks(tasks, ttt, inference, own_frame_share=1.5)


def test_fine_tune_experts_splits_the_time_budget(tmp_path, tiny_model_path, arc1_training, monkeypatch):
    from arc24_lib.experts import ALL_FRAMES, OWN_FRAME, expert_predictions, fine_tune_experts

    configs = []

    def recording(dataset, config):
        configs.append(config)
        return fine_tune_at_test_time(dataset, config)

    monkeypatch.setattr("arc24_lib.test_time.fine_tune_at_test_time", recording)
    ttt = tiny_config(tmp_path, tiny_model_path, max_steps=1, time_budget_s=80.0)
    results = fine_tune_experts(subset_by_ids(arc1_training, ["6150a2bd"]), ttt, own_frame_share=0.25)
    assert list(results) == [OWN_FRAME, ALL_FRAMES] and all(r[0]["status"] == "trained" for r in results.values())
    assert [c.time_budget_s for c in configs] == [20.0, 60.0]
    assert [c.geometric_augmentation for c in configs] == [False, True]
    assert len(fine_tune_experts(subset_by_ids(arc1_training, ["6150a2bd"]), ttt, own_frame_share=0.0)) == 1
    # the inference folder lists the own-frame predictions only where they exist
    (tmp_path / "inference" / OWN_FRAME).mkdir(parents=True)
    assert expert_predictions(tmp_path / "inference") == [tmp_path / "inference" / "predictions.jsonl"]
    (tmp_path / "inference" / OWN_FRAME / "predictions.jsonl").write_text("")
    assert expert_predictions(tmp_path / "inference")[1] == tmp_path / "inference" / OWN_FRAME / "predictions.jsonl"


def test_one_kind_augmentation_reaches_training_and_inference():
    from arc24_lib.inference.airv import InferenceConfig
    from arc24_lib.training import TrainingOptions

    assert TestTimeConfig(one_kind_augmentation=True).augmentation_config().one_kind
    assert InferenceConfig(one_kind_augmentation=True).augmentation_config().one_kind
    assert not TestTimeConfig().augmentation_config().one_kind and not InferenceConfig().augmentation_config().one_kind
    assert not TrainingOptions().augmentation_config().one_kind
