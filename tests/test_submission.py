import json

import pytest

from arc24_lib.data import Dataset, Example, Task
from arc24_lib.partitions import subset_by_ids
from arc24_lib.submission import (
    NO_ANSWER,
    build_submission,
    combine_submissions,
    validate_submission,
    write_submission,
)


@pytest.fixture
def dataset(arc1_training):
    multi = next(t for t in arc1_training if len(t.test) > 1)
    return subset_by_ids(arc1_training, ["6150a2bd", multi.task_id])


def test_writer_output_is_valid_even_when_every_prediction_failed(tmp_path, dataset):
    path = write_submission(dataset, {t.task_id: [[None, None]] * len(t.test) for t in dataset}, tmp_path / "s.json")
    submission = json.loads(path.read_text())
    assert validate_submission(submission, dataset) == []
    assert all(entry == {"attempt_1": NO_ANSWER, "attempt_2": NO_ANSWER} for e in submission.values() for entry in e)
    assert validate_submission(build_submission(dataset, None), dataset) == []  # no attempts at all
    bad_grids = {t.task_id: [[[[11]], [[1], [2, 3]]]] * len(t.test) for t in dataset}
    assert validate_submission(build_submission(dataset, bad_grids), dataset) == []  # replaced by the fallback


DEFECTS = {
    "missing task": (lambda s, ids: s.pop(ids[0]), "missing"),
    "missing test input": (lambda s, ids: s[ids[1]].pop(), "needs a list of"),
    "missing attempt_2": (lambda s, ids: s[ids[0]][0].pop("attempt_2"), "missing attempt_2"),
    "value 10": (lambda s, ids: s[ids[0]][0].update(attempt_1=[[10]]), "attempt_1 is not a valid grid"),
    "ragged": (lambda s, ids: s[ids[0]][0].update(attempt_2=[[1, 2], [3]]), "attempt_2 is not a valid grid"),
    "empty": (lambda s, ids: s[ids[0]][0].update(attempt_1=[]), "attempt_1 is not a valid grid"),
    "31 rows": (lambda s, ids: s[ids[0]][0].update(attempt_1=[[0]] * 31), "not a valid grid"),
    "string cell": (lambda s, ids: s[ids[0]][0].update(attempt_1=[["1"]]), "not a valid grid"),
    "unknown task": (lambda s, ids: s.update(ffffffff=[]), "not in the challenges"),
}


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_validator_catches_each_defect(dataset, defect):
    damage, message = DEFECTS[defect]
    submission = build_submission(dataset)
    damage(submission, dataset.task_ids)
    problems = validate_submission(submission, dataset)
    assert problems and any(message in p for p in problems), problems


def test_combine_first_attempts_and_fill_gaps():
    task = Task("t", [Example([[1]], [[1]])], [Example([[1]])])
    dataset = Dataset("d", {"t": task})
    first = build_submission(dataset, {"t": [[[[1]], [[2]]]]})
    second = build_submission(dataset, {"t": [[[[3]], [[4]]]]})
    gappy = build_submission(dataset, {"t": [[[[5]], None]]})
    assert combine_submissions(first, second, dataset, "first_attempts")["t"][0] == {"attempt_1": [[1]],
                                                                                      "attempt_2": [[3]]}
    assert combine_submissions(gappy, second, dataset, "fill_gaps")["t"][0] == {"attempt_1": [[5]],
                                                                                 "attempt_2": [[3]]}
    assert combine_submissions(first, second, dataset, "fill_gaps")["t"][0] == first["t"][0]
    same = build_submission(dataset, {"t": [[[[1]], None]]})
    assert combine_submissions(first, same, dataset, "first_attempts")["t"][0]["attempt_2"] == [[2]]
    with pytest.raises(ValueError, match="mode"):
        combine_submissions(first, second, dataset, "average")
