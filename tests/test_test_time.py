import json
import time

import numpy as np
import pytest

from arc24_lib.data import Dataset, Example, Task
from arc24_lib.encoders import DEFAULT_ENCODER, parse_encoder
from arc24_lib.models import load_model, load_tokenizer
from arc24_lib.partitions import subset_by_ids
from arc24_lib.prompting import create_prompt, parse_answer
from arc24_lib.task_format import FORMAT_FILE, TaskFormat, saved_format
from arc24_lib.test_time import SUMMARY_FILE, TestTimeConfig, fine_tune_at_test_time


def tiny_config(tmp_path, model_path, **overrides):
    """A short test-time run's config and the tiny model's task format."""
    values = dict(output_dir=str(tmp_path / "ttt"), max_steps=6, lora_r=4, learning_rate=1e-3, logging_steps=1,
                  max_seq_len=1024)
    values.update(overrides)
    return TestTimeConfig(**values), TaskFormat(model_path=str(model_path))


def test_ttt_adapter_per_task_skips_untrainable_and_resumes(tmp_path, tiny_model_path, arc1_training):
    one_pair = arc1_training["6150a2bd"]
    one_pair = Task("one-pair", one_pair.train[:1], [Example(one_pair.test[0].input)])
    huge = Task("huge", [Example(np.zeros((30, 30), int), np.ones((30, 30), int))] * 3,
                [Example(np.zeros((30, 30), int))])
    tasks = {t.task_id: t for t in [arc1_training["0d3d703e"].without_solutions(), one_pair, huge]}
    results = fine_tune_at_test_time(Dataset("mixed", tasks), *tiny_config(tmp_path, tiny_model_path))
    by_id = {r["task_id"]: r for r in results}
    assert by_id["0d3d703e"]["status"] == "trained" and by_id["0d3d703e"]["steps"] == 6
    assert by_id["one-pair"]["status"] == "skipped" and "only 1 train pairs" in by_id["one-pair"]["reason"]
    assert by_id["huge"]["status"] == "skipped" and "fits max_seq_len" in by_id["huge"]["reason"]
    adapter = tmp_path / "ttt" / "0d3d703e"
    assert (adapter / "adapter_model.safetensors").exists() and (adapter / "tokenizer_config.json").exists()
    assert load_model(tiny_model_path, adapter, device="cpu") is not None
    lines = (tmp_path / "ttt" / SUMMARY_FILE).read_text().splitlines()
    assert [json.loads(line)["task_id"] for line in lines] == list(tasks)
    # the format the adapters were trained in lies beside them, for inference to read
    assert (tmp_path / "ttt" / FORMAT_FILE).exists()
    assert saved_format(tmp_path / "ttt") == TaskFormat(model_path=str(tiny_model_path))
    # a rerun keeps finished tasks and trains nothing again
    started = time.perf_counter()
    again = fine_tune_at_test_time(Dataset("mixed", tasks), *tiny_config(tmp_path, tiny_model_path))
    assert again == results and time.perf_counter() - started < 5
    assert len((tmp_path / "ttt" / SUMMARY_FILE).read_text().splitlines()) == 3


def test_ttt_stops_at_time_budget_and_at_low_loss(tmp_path, tiny_model_path, arc1_training):
    tasks = subset_by_ids(arc1_training, ["0d3d703e"])
    timed = fine_tune_at_test_time(tasks, *tiny_config(tmp_path / "a", tiny_model_path, max_steps=10_000,
                                                   time_budget_s=2.0))[0]
    assert timed["stop_reason"] == "time_budget" and 0 < timed["steps"] < 10_000
    assert timed["seconds"] < 2.0 + 1.0  # the budget counts the setup and no step ends past it; saving is outside
    early = fine_tune_at_test_time(tasks, *tiny_config(tmp_path / "b", tiny_model_path, max_steps=50,
                                                   early_stop_loss=100.0))[0]
    assert early["stop_reason"] == "early_stop_loss" and early["steps"] == 1


def test_learning_rate_decay_follows_the_larger_of_step_and_time_shares():
    from arc24_lib.test_time import budget_progress, cosine_rate

    assert budget_progress(5, 10, elapsed_s=1.0, time_budget_s=None) == 0.5
    assert budget_progress(5, 10, elapsed_s=8.0, time_budget_s=10.0) == 0.8  # the clock runs out first
    assert budget_progress(9, 10, elapsed_s=1.0, time_budget_s=10.0) == 0.9
    assert budget_progress(12, 10, elapsed_s=30.0, time_budget_s=10.0) == 1.0
    assert budget_progress(0, 10, elapsed_s=3.0, time_budget_s=10.0) == 0.0  # the first step: the peak rate
    assert cosine_rate(1e-3, 0.0, 0.1) == pytest.approx(1e-3)
    assert cosine_rate(1e-3, 0.5, 0.1) == pytest.approx(0.55e-3)
    assert cosine_rate(1e-3, 1.0, 0.1) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="decay_floor"):
        TestTimeConfig(decay_floor=1.5)


def test_learning_rate_decay_sets_the_rate_each_optimizer_step_uses_and_logs(tmp_path, tiny_model_path, arc1_training):
    from transformers import TrainerCallback

    from arc24_lib.partitions import leave_one_out
    from arc24_lib.samples import SampleSource, TrainingSamples
    from arc24_lib.test_time import budget_callback, budget_lr_multiplier, cosine_rate
    from arc24_lib.training import make_trainer, prepare_model, training_arguments

    config, task_format = tiny_config(tmp_path, tiny_model_path, max_steps=5, decay_floor=0.1, time_budget_s=600.0)
    tokenizer = load_tokenizer(tiny_model_path)
    forms = leave_one_out(arc1_training["0d3d703e"])
    samples = TrainingSamples([SampleSource(forms, task_format.prompt_version)], task_format.encoder,
                              tokenizer, config.max_seq_len, seed=0)
    used = []

    class RateRecorder(TrainerCallback):
        def on_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
            used.append(optimizer.param_groups[0]["lr"])

    trainer = make_trainer(prepare_model(config, "cpu", task_format.model_path), tokenizer,
                           training_arguments(config, tmp_path / "trainer", "cpu", disable_tqdm=True), samples,
                           callbacks=[budget_callback(config), RateRecorder()],
                           lr_multiplier=budget_lr_multiplier(config))
    trainer.train()
    # a 600 s budget is barely touched in 5 steps, so the step share rules
    expected = [cosine_rate(1e-3, step / 5, 0.1) for step in range(5)]
    assert used == pytest.approx(expected, rel=0.02)
    # the Trainer's own log shows the rate each step used (it is the Trainer's scheduler)
    logged = [entry["learning_rate"] for entry in trainer.state.log_history if "learning_rate" in entry]
    assert logged == pytest.approx(expected, rel=0.02)


def test_ttt_shared_adapter_for_all_tasks(tmp_path, tiny_model_path, arc1_training):
    tasks = subset_by_ids(arc1_training, ["0d3d703e", "6150a2bd"])
    results = fine_tune_at_test_time(tasks, *tiny_config(tmp_path, tiny_model_path, shared_adapter=True))
    assert [r["task_id"] for r in results] == ["shared"] and results[0]["steps"] == 6
    assert (tmp_path / "ttt" / "shared" / "adapter_model.safetensors").exists()


@pytest.mark.slow
def test_ttt_embedded_model_solves_6150a2bd(tmp_path, arc1_training):
    """The real SmolLM2 learns task 6150a2bd (rotate 180°) from its two train pairs alone."""
    task = arc1_training["6150a2bd"]
    config = TestTimeConfig(output_dir=str(tmp_path / "ttt"), max_steps=150, lora_r=32,
                            learning_rate=1e-3, max_seq_len=1024, device="cpu")
    result = fine_tune_at_test_time(subset_by_ids(arc1_training, ["6150a2bd"]), config)[0]
    assert result["status"] == "trained" and result["final_loss"] < result["first_loss"] / 4
    tokenizer = load_tokenizer("embedded")
    model = load_model("embedded", result["adapter_path"], device="cpu")
    encoder = parse_encoder(DEFAULT_ENCODER)
    prompt = create_prompt(task.without_solutions(), encoder, TaskFormat().prompt_version, tokenizer)
    inputs = tokenizer(prompt.text, return_tensors="pt", add_special_tokens=False)
    output = model.generate(**inputs, max_new_tokens=40, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1]:])
    assert np.array_equal(parse_answer(answer, encoder, (tokenizer.eos_token,)), task.test[0].output), answer


def test_a_task_id_cannot_take_training_outside_its_folder(tmp_path, tiny_model_path, arc1_training):
    from dataclasses import replace

    hostile = replace(arc1_training["0d3d703e"], task_id="../escape")  # built directly, past load_dataset's check
    with pytest.raises(ValueError, match="not a plain name"):
        fine_tune_at_test_time(Dataset("hostile", {hostile.task_id: hostile}), *tiny_config(tmp_path, tiny_model_path))
    assert not (tmp_path / "escape").exists() and not list((tmp_path / "ttt").glob("*/"))


def test_training_whose_steps_end_first_is_the_same_on_every_launch(tmp_path, tiny_model_path, arc1_training):
    """A run resumed after a crash trains a task again: with a time budget that steps end before, it must give
    the same adapter as the first launch did, bit for bit (the crash drill compares whole runs)."""
    from safetensors.torch import load_file

    tasks = subset_by_ids(arc1_training, ["0d3d703e"]).without_solutions()
    weights = []
    for launch in ("first", "again"):
        fine_tune_at_test_time(tasks, *tiny_config(tmp_path / launch, tiny_model_path, time_budget_s=300.0))
        weights.append(load_file(tmp_path / launch / "ttt" / "0d3d703e" / "adapter_model.safetensors"))
        time.sleep(0.5 if launch == "first" else 0)  # a different clock at the first step
    assert weights[0].keys() == weights[1].keys()
    assert all((weights[0][name] == weights[1][name]).all() for name in weights[0])
