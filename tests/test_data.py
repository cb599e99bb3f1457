import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arc24_lib.data import (
    BUILTIN_DATASETS,
    ARCDataError,
    get_dataset,
    load_builtin,
    load_dataset,
    parse_task,
    save_dataset,
    task_id_problem,
    task_path,
)

GOOD = {"train": [{"input": [[1, 2], [3, 4]], "output": [[4, 3], [2, 1]]}], "test": [{"input": [[5, 6]]}]}


def with_grid(grid):
    """A copy of GOOD whose first train input is `grid`."""
    task = json.loads(json.dumps(GOOD))
    task["train"][0]["input"] = grid
    return task


BAD_TASKS = {
    "missing-train": ({"test": GOOD["test"]}, "missing 'train'"),
    "missing-test": ({"train": GOOD["train"]}, "missing 'test'"),
    "empty-train": ({"train": [], "test": GOOD["test"]}, "'train' is empty"),
    "empty-test": ({"train": GOOD["train"], "test": []}, "'test' is empty"),
    "no-output": ({"train": [{"input": [[1]]}], "test": GOOD["test"]}, "no 'output'"),
    "ragged": (with_grid([[1, 2], [3]]), "not rectangular"),
    "value-10": (with_grid([[10]]), "integers 0-9"),
    "value-minus-1": (with_grid([[-1]]), "integers 0-9"),
    "value-string": (with_grid([["3"]]), "integers 0-9"),
    "value-float": (with_grid([[2.5]]), "integers 0-9"),
    "value-bool": (with_grid([[True]]), "integers 0-9"),
    "empty-grid": (with_grid([]), "non-empty list of rows"),
    "empty-row": (with_grid([[]]), "non-empty list of cells"),
    "31-rows": (with_grid([[0]] * 31), "more than 30"),
    "31x31": (with_grid([[0] * 31] * 31), "more than 30"),
    "31-cols": (with_grid([[0] * 31]), "more than 30"),
    "not-a-task": ([1, 2], "JSON object"),
    "pool-test-not-list": ({"train": GOOD["train"] * 2, "n_train": 1, "test": 5}, "'test' must be a list"),
}


def write(path, data):
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("task_id", sorted(BAD_TASKS))
def test_load_dataset_names_file_task_and_problem(tmp_path, task_id):
    data, problem = BAD_TASKS[task_id]
    path = write(tmp_path / "bad_challenges.json", {"good1": GOOD, task_id: data})
    with pytest.raises(ARCDataError) as error:
        load_dataset(path)
    message = str(error.value)
    assert str(path) in message and f"task {task_id}" in message and problem in message


def test_load_dataset_skip_bad_keeps_valid_tasks_and_reports(tmp_path):
    tasks = {"good1": GOOD, **{task_id: data for task_id, (data, _) in BAD_TASKS.items()}, "good2": GOOD}
    dataset = load_dataset(write(tmp_path / "mixed_challenges.json", tasks), skip_bad=True)
    assert dataset.task_ids == ["good1", "good2"]
    assert sorted(r.task_id for r in dataset.rejected) == sorted(BAD_TASKS)
    report = dataset.rejection_report()
    assert all(f"task {task_id}" in report for task_id in BAD_TASKS)


UNREADABLE_FILES = {
    "broken": (b'{"train": [', "invalid JSON"),
    "deep": (b"[" * 100_000 + b"]" * 100_000, "invalid JSON: nested too deeply"),  # RecursionError in json
    "latin": (json.dumps(GOOD).encode()[:-1] + b', "note": "caf\xe9"}', "not UTF-8 text"),
}


@pytest.mark.parametrize("name", sorted(UNREADABLE_FILES))
def test_an_unreadable_file_is_named_and_skipped(tmp_path, name):
    content, problem = UNREADABLE_FILES[name]
    path = tmp_path / f"{name}.json"
    path.write_bytes(content)
    with pytest.raises(ARCDataError, match=f"{name}.json: {problem}"):
        load_dataset(path)
    good = write(tmp_path / "ok.json", GOOD)
    dataset = load_dataset([path, good], skip_bad=True)
    assert dataset.task_ids == ["ok"] and dataset.rejected[0].source == str(path)


def test_load_dataset_solutions_attached_and_counted(tmp_path):
    challenges = write(tmp_path / "x_challenges.json", {"a": GOOD})
    write(tmp_path / "x_solutions.json", {"a": [[[7, 7]]]})
    dataset = load_dataset(challenges)
    assert dataset["a"].has_solutions and dataset["a"].test[0].output.tolist() == [[7, 7]]
    write(tmp_path / "x_solutions.json", {"a": [[[7, 7]], [[1]]]})
    with pytest.raises(ARCDataError, match=r"task a: solutions has 2 grids but the task has 1 test inputs"):
        load_dataset(challenges)
    write(tmp_path / "x_solutions.json", {"a": [[[7, 11]]]})
    with pytest.raises(ARCDataError, match=r"x_solutions.json|solution\[0\]"):
        load_dataset(challenges)


def test_load_dataset_duplicate_ids_across_files(tmp_path):
    first = write(tmp_path / "one_challenges.json", {"same": GOOD})
    second = write(tmp_path / "two_challenges.json", {"same": GOOD, "other": GOOD})
    with pytest.raises(ARCDataError, match=r"two_challenges.json: task same: duplicate task id.*one_challenges"):
        load_dataset([first, second])
    dataset = load_dataset([first, second], skip_bad=True)
    assert dataset.task_ids == ["same", "other"] and len(dataset.rejected) == 1


def test_load_dataset_folder_of_task_files(tmp_path):
    folder = tmp_path / "tasks"
    folder.mkdir()
    write(folder / "abc.json", GOOD)
    write(folder / "def.json", {"train": GOOD["train"], "test": [{"input": [[1]], "output": [[2]]}]})
    dataset = load_dataset(folder)
    assert dataset.task_ids == ["abc", "def"]
    assert not dataset["abc"].has_solutions and dataset["def"].has_solutions


def test_load_dataset_pool_file(tmp_path):
    pairs = [{"input": [[i]], "output": [[i + 1]]} for i in range(8)]
    path = write(tmp_path / "pool.json", {"t1": {"train": pairs, "n_train": 3}})
    task = load_dataset(path)["t1"]
    assert task.n_train == 3 and len(task.train) == 8 and task.test == []
    write(path, {"t1": {"train": pairs, "n_train": 8}})
    with pytest.raises(ARCDataError, match="task t1: n_train is 8"):
        load_dataset(path)


def test_save_dataset_round_trip(tmp_path, arc1_training):
    path = save_dataset(arc1_training, tmp_path / "arc1_challenges.json")
    again = load_dataset(path)
    assert again.task_ids == arc1_training.task_ids
    for task in arc1_training:
        for a, b in zip(task.examples, again[task.task_id].examples, strict=True):
            assert np.array_equal(a.input, b.input) and np.array_equal(a.output, b.output)


@pytest.mark.parametrize("name", BUILTIN_DATASETS)
def test_load_builtin_sizes_and_solutions(name):
    expected = {"arc-agi-1": 400, "arc-2019": 400, "kaggle-2024": 400}.get(name.split("/")[0])
    if expected is None:
        expected = 1000 if name.endswith("training") else 120
    dataset = load_builtin(name)
    assert len(dataset) == expected
    assert all(task.has_solutions and task.train for task in dataset)


def test_get_dataset_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="arc-agi-1/training"):
        get_dataset("arc-agi-1/nonsense")


# --- hostile or odd input -----------------------------------------------------------------

HOSTILE_IDS = ["../../x", "a/b", "..", "a..b", "x\x00y", "", "a" * 101, " spaced", "back\\slash", ".hidden",
               "-dash", "tab\t", "é"]


@pytest.mark.parametrize("task_id", HOSTILE_IDS)
def test_task_ids_that_are_not_plain_names_are_refused(tmp_path, task_id):
    path = write(tmp_path / "hostile_challenges.json", {"good1": GOOD, task_id: GOOD})
    with pytest.raises(ARCDataError, match="hostile_challenges.json: task .*not a plain name") as error:
        load_dataset(path)
    assert error.value.task_id == task_id and "\x00" not in str(error.value)  # shown with repr, not raw
    dataset = load_dataset(path, skip_bad=True)
    assert dataset.task_ids == ["good1"] and dataset.rejected[0].task_id == task_id


def test_plain_task_ids_of_every_builtin_dataset_pass():
    assert all(task_id_problem(task_id) is None for name in BUILTIN_DATASETS for task_id in load_builtin(name).tasks)
    assert all(task_id_problem(task_id) is None for task_id in ("0d3d703e", "re-arc_x.1", "a" * 100, "shared"))


def test_task_path_stays_inside_its_folder(tmp_path):
    assert task_path(tmp_path, "0d3d703e", ".png") == tmp_path / "0d3d703e.png"
    for task_id in HOSTILE_IDS:
        with pytest.raises(ValueError, match="not a plain name"):
            task_path(tmp_path, task_id)
    (tmp_path / "outside").mkdir()
    (tmp_path / "adapters").mkdir()
    (tmp_path / "adapters" / "linked").symlink_to(tmp_path / "outside")
    with pytest.raises(ValueError, match="outside"):
        task_path(tmp_path / "adapters", "linked")


def test_a_byte_order_mark_is_read(tmp_path):
    challenges = tmp_path / "bom_challenges.json"
    challenges.write_bytes(b"\xef\xbb\xbf" + json.dumps({"a": GOOD}).encode())
    (tmp_path / "bom_solutions.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"a": [[[7]]]}).encode())
    assert load_dataset(challenges)["a"].test[0].output.tolist() == [[7]]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 12) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20)
VALID_GRIDS = st.integers(1, 3).flatmap(
    lambda width: st.lists(st.lists(st.integers(0, 9), min_size=width, max_size=width), min_size=1, max_size=3))
GRIDS = VALID_GRIDS | st.lists(st.lists(st.integers(-1, 10), max_size=3), max_size=3) | JSON_VALUES
PAIRS = (st.fixed_dictionaries({"input": VALID_GRIDS, "output": VALID_GRIDS})
         | st.fixed_dictionaries({"input": GRIDS}, optional={"output": GRIDS}) | JSON_VALUES)
TASKS = st.fixed_dictionaries({}, optional={"train": st.lists(PAIRS, max_size=3) | JSON_VALUES,
                                            "test": st.lists(PAIRS, max_size=2) | JSON_VALUES,
                                            "n_train": st.integers(-1, 4) | JSON_VALUES}) | JSON_VALUES
TASK_IDS = st.sampled_from(["a", "b1", "../x", ""]) | st.text(max_size=8)
FILES = st.dictionaries(TASK_IDS, TASKS, max_size=3) | TASKS | JSON_VALUES


@settings(max_examples=300, deadline=None)
@given(challenges=FILES, solutions=st.none() | st.dictionaries(TASK_IDS, st.lists(GRIDS, max_size=2) | JSON_VALUES,
                                                                max_size=3) | JSON_VALUES)
def test_load_dataset_gives_valid_tasks_or_its_own_error(challenges, solutions):
    """Any JSON at all: load_dataset returns tasks that validate, or raises ARCDataError, nothing else."""
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder) / "fuzz_challenges.json", challenges)
        if solutions is not None:
            write(Path(folder) / "fuzz_solutions.json", solutions)
        try:
            dataset = load_dataset(path)
        except ARCDataError as error:
            assert str(error).startswith(folder)  # names the challenges or the solutions file
            dataset = load_dataset(path, skip_bad=True)
            assert dataset.rejected
        for task in dataset:
            assert task_id_problem(task.task_id) is None and task.train
            again = parse_task(task.to_json(), task.task_id, "round trip")
            assert all(g.ndim == 2 and g.dtype == np.int64 and 0 <= g.min() and g.max() <= 9
                       for example in again.examples for g in (example.input, example.output) if g is not None)
