"""Every notebook runs under papermill with tiny settings; pairs stay in sync; bad parameters fail clearly."""

import json

import jupytext
import nbformat
import pytest

from arc24_lib.notebooks import NOTEBOOKS, NOTEBOOKS_DIR, run_notebook

PIPELINE = ["01_data", "02_fine_tuning", "03_test_time_fine_tuning", "04_inference", "05_evaluation"]


def test_every_notebook_has_a_py_source_and_an_ipynb_pair():
    sources = sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.py"))
    assert sources == sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb"))
    assert len(sources) == len([n for n in NOTEBOOKS if (NOTEBOOKS_DIR / f"{n}.py").exists()]) >= 5
    assert set(PIPELINE) <= set(sources)


@pytest.mark.parametrize("name", sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.py")))
def test_notebook_pair_in_sync_and_outputs_stripped(name):
    source = jupytext.read(NOTEBOOKS_DIR / f"{name}.py")
    paired = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    assert [(c.cell_type, c.source.strip()) for c in source.cells] == \
        [(c.cell_type, c.source.strip()) for c in paired.cells], f"run `jupytext --sync notebooks/{name}.py`"
    assert all(not c.get("outputs") and not c.get("execution_count") for c in paired.cells if c.cell_type == "code")
    tagged = [c for c in source.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged parameters"
    assert "parameters" in paired.cells[source.cells.index(tagged[0])].metadata.get("tags", [])


def test_notebooks_run_in_sequence_and_write_their_outputs(tmp_path, tiny_model_path):
    out, executed = tmp_path / "out", tmp_path / "executed"
    common = {"output_dir": str(out)}
    run_notebook("01_data", {**common, "n_tasks": 2, "model_path": str(tiny_model_path)}, executed, False)
    challenges = json.loads((out / "01_data" / "tasks_challenges.json").read_text())
    assert len(challenges) == 2 and (out / "01_data" / "token_report.md").exists()
    assert len(list((out / "01_data" / "pictures").glob("*.png"))) == 2
    tasks_path = str(out / "01_data" / "tasks_challenges.json")

    fine_tuning = {"train_datasets": [[tasks_path, "output-from-examples-v2"]], "model_path": str(tiny_model_path),
                   "max_steps": 2, "samples_per_step": 1, "lora_r": 4, "max_seq_len": 1024}
    run_notebook("02_fine_tuning", {**common, **fine_tuning}, executed, False)
    assert (out / "02_fine_tuning" / "adapter_model.safetensors").exists()
    assert (out / "02_fine_tuning" / "loss.png").exists()

    run_notebook("03_test_time_fine_tuning", {**common, "model_path": str(tiny_model_path), "max_steps": 2,
                                              "lora_r": 4, "lora_layers": 1, "max_seq_len": 1024,
                                              "augmentation": {"keep_rule_colors": False}}, executed, False)
    folder = out / "03_test_time_fine_tuning"
    for task_id in challenges:
        result = json.loads((folder / task_id / "ttt_result.json").read_text())
        assert result["status"] == "trained" and result["steps"] == 2
        adapter = json.loads((folder / task_id / "adapter_config.json").read_text())
        assert adapter["layers_to_transform"] == [1]  # the tiny model's last layer
    trained_with = json.loads((folder / "task_format.json").read_text())
    assert trained_with["augmentation"]["keep_rule_colors"] is False
    assert trained_with["augmentation"]["own_frame_probability"] == 0.5 and trained_with["model_path"] == str(
        tiny_model_path)

    run_notebook("04_inference", {**common, "model_path": str(tiny_model_path), "predictions_per_test_input": 2,
                                  "max_seq_len": 1024}, executed, False)
    # inference reads the format 03's adapters were trained in (its model_path agrees; the rest is theirs)
    assert json.loads((out / "04_inference" / "task_format.json").read_text()) == trained_with
    assert json.loads((out / "04_inference" / "inference_config.json").read_text())["adapters_dir"] == str(folder)
    submission = json.loads((out / "04_inference" / "submission.json").read_text())
    assert set(submission) == set(challenges)
    lines = (out / "04_inference" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 2 * sum(len(task["test"]) for task in challenges.values())
    assert not (out / "04_inference" / "metrics.json").exists()  # 04 never looks at the solutions

    run_notebook("05_evaluation", common, executed, False)
    metrics = json.loads((out / "05_evaluation" / "metrics.json").read_text())
    assert set(metrics["per_task"]) == set(challenges) and (out / "05_evaluation" / "report.md").exists()
    assert sorted(p.name for p in executed.glob("*.ipynb")) == sorted(f"{n}.ipynb" for n in PIPELINE)


@pytest.mark.parametrize(("parameters", "message"), [
    ({"max_step": 5}, "unknown TaskFormat or TestTimeConfig field(s): 'max_step' (did you mean 'max_steps'?)"),
    ({"augmentation": {"keep_rule_color": False}}, "unknown AugmentationConfig field(s): 'keep_rule_color' "
                                                   "(did you mean 'keep_rule_colors'?)"),
    ({"augmentation": {"permute_colors": "no"}}, "permute_colors must be true or false"),
    ({"max_steps": "ten"}, "max_steps must be of type int"),
    ({"early_stop_loss": "low"}, "early_stop_loss"),
])
def test_bad_parameter_fails_with_a_clear_message(tmp_path, parameters, message):
    import papermill

    with pytest.raises(papermill.PapermillExecutionError) as error:
        run_notebook("03_test_time_fine_tuning", {"output_dir": str(tmp_path), **parameters}, tmp_path, False)
    assert message in str(error.value)
