import numpy as np
import pytest

from arc24_lib.data import Dataset, Example, Task
from arc24_lib.evaluation import evaluate, markdown_table, test_input_metrics, write_report

TRUTH = np.array([[1, 2], [3, 4]])


def test_metrics_of_mixed_predictions():
    predictions = [TRUTH.tolist(), [[1, 2], [3, 0]], [[1, 2, 3]], None]
    m = test_input_metrics(predictions, [[[1, 2], [3, 0]], TRUTH.tolist()], TRUTH)
    assert m["accuracy"] == 0.25 and m["correct_size"] == 0.5 and m["unanswered"] == 0.25
    assert m["correct_pixels"] == pytest.approx((1.0 + 0.75) / 4)
    assert m["pass_n"] == 1.0 and m["vote_1"] == 0.0 and m["vote_2"] == 1.0


def test_metrics_with_no_or_wrong_answers():
    m = test_input_metrics([], [None, None], TRUTH)
    assert m == {"accuracy": 0.0, "correct_pixels": 0.0, "correct_size": 0.0, "pass_n": 0.0,
                 "vote_1": 0.0, "vote_2": 0.0, "unanswered": 1.0}
    m = test_input_metrics([[[9]], None], [[[9]], None], TRUTH)
    assert m["correct_size"] == 0.0 and m["correct_pixels"] == 0.0 and m["unanswered"] == 0.5


def test_evaluate_averages_test_inputs_then_tasks(tmp_path):
    one = Task("one", [Example(TRUTH, TRUTH)], [Example(TRUTH, TRUTH), Example(TRUTH, TRUTH.T)])
    two = Task("two", [Example(TRUTH, TRUTH)], [Example(TRUTH, TRUTH)])
    dataset = Dataset("d", {"one": one, "two": two})
    records = [{"task_id": "one", "test_index": 0, "grid": TRUTH.tolist()},
               {"task_id": "one", "test_index": 1, "grid": TRUTH.tolist()},
               {"task_id": "two", "test_index": 0, "grid": TRUTH.tolist()}]
    attempts = {"one": [[TRUTH.tolist(), None], [TRUTH.tolist(), None]], "two": [[TRUTH.tolist(), None]]}
    result = evaluate(records, attempts, dataset)
    assert result["per_task"]["one"]["accuracy"] == 0.5 and result["per_task"]["two"]["accuracy"] == 1.0
    assert result["summary"]["accuracy"] == 0.75  # mean of task means, not of test inputs (2/3)
    assert "| **all 2 tasks** | 0.750" in markdown_table(result)
    report = write_report(result, attempts, dataset, tmp_path)
    assert "![one](pictures/one.png)" in report.read_text() and (tmp_path / "pictures" / "two.png").exists()
