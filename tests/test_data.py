import json

import numpy as np
import pytest

from arc24_lib.data import (
    BUILTIN_DATASETS,
    ARCDataError,
    get_dataset,
    load_builtin,
    load_dataset,
    save_dataset,
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


def test_load_dataset_invalid_json_names_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"train": [')
    with pytest.raises(ARCDataError, match="broken.json: invalid JSON"):
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
