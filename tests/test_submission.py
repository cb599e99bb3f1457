import itertools
import json

import pytest

from arc24_lib.data import Dataset, Example, Task
from arc24_lib.partitions import subset_by_ids
from arc24_lib.submission import (
    ATTEMPT_KEYS,
    NO_ANSWER,
    build_submission,
    combine_attempts,
    combine_submissions,
    submission_attempts,
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


# The combining rule as a table: the order in which each mode takes (submission, attempt); the first two
# grids not taken yet are the result. first_attempts is the 2024 reference's rule: the second submission's
# first attempt is preferred for attempt 2, then its second attempt, then the first submission's.
RULE = {"first_attempts": [("first", 0), ("second", 0), ("second", 1), ("first", 1)],
        "fill_gaps": [("first", 0), ("first", 1), ("second", 0), ("second", 1)]}
ZERO = [[0]]  # a real answer (ARC-AGI-1 training 239be575) and the file format's placeholder
CHOICES = [ZERO, [[1]], [[2, 2]], None]  # three grids and a gap


def by_rule(mode, sides):
    chosen = []
    for side, attempt in RULE[mode]:
        grid = sides[side][attempt]
        if grid is not None and grid not in chosen:
            chosen.append(grid)
    return (chosen + [None, None])[:2]


def one_task():
    return Dataset("d", {"t": Task("t", [Example([[1]], [[1]])], [Example([[1]])])})


@pytest.mark.parametrize("mode", sorted(RULE))
def test_combine_attempts_follows_the_rule_for_every_combination(mode):
    dataset, checked = one_task(), 0
    for a1, a2, b1, b2 in itertools.product(CHOICES, repeat=4):
        sides = {"first": [a1, a2], "second": [b1, b2]}
        combined = combine_attempts({"t": [[a1, a2]]}, {"t": [[b1, b2]]}, dataset, mode)
        assert combined == {"t": [by_rule(mode, sides)]}, (mode, sides)
        checked += 1
    assert checked == len(CHOICES) ** 4


@pytest.mark.parametrize("mode", sorted(RULE))
@pytest.mark.parametrize("zero_is_gap", [True, False])
def test_combine_submission_files_reads_zero_as_asked(mode, zero_is_gap):
    dataset = one_task()
    for a1, a2, b1, b2 in itertools.product(CHOICES, repeat=4):
        files = [build_submission(dataset, {"t": [pair]}) for pair in ([a1, a2], [b1, b2])]
        # a file holds the grids first, then the placeholder: None and [[0]] both read as [[0]]
        in_files = {side: ([g for g in pair if g is not None] + [ZERO, ZERO])[:2]
                    for side, pair in (("first", [a1, a2]), ("second", [b1, b2]))}
        read = {side: [None if zero_is_gap and grid == ZERO else grid for grid in grids]
                for side, grids in in_files.items()}
        expected = [grid if grid is not None else NO_ANSWER for grid in by_rule(mode, read)]
        combined = combine_submissions(*files, dataset, mode, zero_is_gap=zero_is_gap)["t"][0]
        assert combined == dict(zip(ATTEMPT_KEYS, expected, strict=True)), (mode, read)
    with pytest.raises(ValueError, match="mode"):
        combine_attempts({}, {}, dataset, "average")


def test_a_real_zero_answer_is_never_a_gap_inside_the_library():
    dataset = one_task()
    assert submission_attempts(build_submission(dataset, {"t": [[ZERO, None]]}), zero_is_gap=False) == {
        "t": [[ZERO, ZERO]]}  # the file cannot tell: the placeholder reads as a 1x1 answer too
    ours = {"t": [[ZERO, None]]}
    assert combine_attempts(ours, {"t": [[[[3]], [[4]]]]}, dataset, "fill_gaps") == {"t": [[ZERO, [[3]]]]}
    assert combine_attempts(ours, {"t": [[[[3]], [[4]]]]}, dataset, "first_attempts") == {"t": [[ZERO, [[3]]]]}
