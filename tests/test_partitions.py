import numpy as np
import pytest

from arc24_lib.partitions import (
    leave_one_out,
    leave_one_out_dataset,
    random_split,
    smallest_tasks,
    split_test_inputs,
    subset_by_ids,
    subset_by_size,
)


def test_random_split_is_seeded_disjoint_and_complete(arc1_training):
    a, b = random_split(arc1_training, 0.8, seed=7)
    again, _ = random_split(arc1_training, 0.8, seed=7)
    other, _ = random_split(arc1_training, 0.8, seed=8)
    assert len(a) == 320 and len(b) == 80
    assert set(a.task_ids) | set(b.task_ids) == set(arc1_training.task_ids)
    assert not set(a.task_ids) & set(b.task_ids)
    assert a.task_ids == again.task_ids and a.task_ids != other.task_ids
    with pytest.raises(ValueError, match="fraction"):
        random_split(arc1_training, 1.0, seed=0)


def test_subset_by_ids_keeps_order_and_rejects_unknown(arc1_training):
    ids = ["6150a2bd", "007bbfb7"]
    assert subset_by_ids(arc1_training, ids).task_ids == ids
    with pytest.raises(KeyError, match="no task nope"):
        subset_by_ids(arc1_training, ["007bbfb7", "nope"])


def test_smallest_tasks_and_size_filter(arc1_training):
    small = smallest_tasks(arc1_training, 12)
    cells = [task.n_cells for task in small]
    assert len(small) == 12 and cells == sorted(cells)
    assert max(cells) <= min(task.n_cells for task in arc1_training if task.task_id not in small)
    limited = subset_by_size(arc1_training, max_cells=300, max_side=5)
    assert 0 < len(limited) < len(arc1_training)
    for task in limited:
        assert task.n_cells <= 300
        assert all(max(g.shape) <= 5 for ex in task.examples for g in (ex.input, ex.output))


def test_leave_one_out_holds_out_each_train_pair(arc1_training):
    task = arc1_training["6150a2bd"]
    forms = leave_one_out(task)
    assert len(forms) == len(task.train)
    for i, form in enumerate(forms):
        assert len(form.train) == len(task.train) - 1 and len(form.test) == 1
        assert np.array_equal(form.test[0].input, task.train[i].input)
        assert np.array_equal(form.test[0].output, task.train[i].output)
        assert [id(ex) for ex in form.train] == [id(ex) for j, ex in enumerate(task.train) if j != i]
    loo = leave_one_out_dataset(arc1_training)
    assert len(loo) == sum(len(t.train) for t in arc1_training if len(t.train) > 1)


def test_split_test_inputs_one_task_per_test_input(arc1_training):
    split = split_test_inputs(arc1_training)
    assert len(split) == sum(len(task.test) for task in arc1_training)
    assert all(len(task.test) == 1 for task in split)
    multi = next(task for task in arc1_training if len(task.test) > 1)
    assert f"{multi.task_id}_1" in split
    assert np.array_equal(split[f"{multi.task_id}_1"].test[0].input, multi.test[1].input)
