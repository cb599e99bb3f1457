"""Partitions of a dataset: seeded splits, subsets, leave-one-out sets, one-test tasks (D3)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from arc24_lib.data import Dataset, Task

# Separators of derived task ids: `<id>-loo<i>` leaves train pair i out, `<id>_<k>` is test input k.
LEAVE_ONE_OUT_MARK = "-loo"
TEST_INDEX_MARK = "_"


def _derived(dataset: Dataset, tasks: Iterable[Task], suffix: str) -> Dataset:
    return Dataset(f"{dataset.name}{suffix}", {task.task_id: task for task in tasks})


def random_split(dataset: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Split task ids at random into (first, rest) with `fraction` of the tasks in the first part."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction is {fraction}; it must lie strictly between 0 and 1")
    ids = sorted(dataset.task_ids)
    np.random.default_rng(seed).shuffle(ids)
    cut = round(len(ids) * fraction)
    first = set(ids[:cut])
    return (_derived(dataset, (t for t in dataset if t.task_id in first), f"[split{seed}:a]"),
            _derived(dataset, (t for t in dataset if t.task_id not in first), f"[split{seed}:b]"))


def subset_by_ids(dataset: Dataset, task_ids: Iterable[str]) -> Dataset:
    """The tasks with the given ids, in the given order; an unknown id is an error."""
    task_ids = list(task_ids)
    missing = [task_id for task_id in task_ids if task_id not in dataset]
    if missing:
        raise KeyError(f"{dataset.name} has no task {', '.join(missing[:5])}"
                       f"{' …' if len(missing) > 5 else ''}")
    return _derived(dataset, (dataset[task_id] for task_id in task_ids), "[ids]")


def smallest_tasks(dataset: Dataset, n: int) -> Dataset:
    """The `n` tasks with the fewest cells over all their grids (ties broken by id)."""
    ordered = sorted(dataset, key=lambda task: (task.n_cells, task.task_id))
    return _derived(dataset, ordered[:n], f"[smallest{n}]")


def subset_by_size(dataset: Dataset, max_cells: int | None = None, max_side: int | None = None) -> Dataset:
    """The tasks whose total cell count and largest grid side are within the given limits."""

    def fits(task: Task) -> bool:
        grids = [g for example in task.examples for g in (example.input, example.output) if g is not None]
        return ((max_cells is None or task.n_cells <= max_cells)
                and (max_side is None or max(max(g.shape) for g in grids) <= max_side))

    return _derived(dataset, filter(fits, dataset), "[size]")


def leave_one_out(task: Task) -> list[Task]:
    """The n-1 form of a task: each train pair in turn becomes the test, the others stay train.

    Used for test-time training, where only the train pairs have known outputs. A task with a
    single train pair has no such form and gives an empty list.
    """
    if len(task.train) < 2:
        return []
    return [Task(f"{task.task_id}{LEAVE_ONE_OUT_MARK}{i}", task.train[:i] + task.train[i + 1:], [held_out])
            for i, held_out in enumerate(task.train)]


def leave_one_out_known_pairs(task: Task) -> list[Task]:
    """Leave-one-out over every pair with a known output, test pairs included: each is held out in
    turn with the others shown (fine-tuning data; a task with one known pair has no such form)."""
    known = [*task.train, *(example for example in task.test if example.output is not None)]
    return leave_one_out(Task(task.task_id, known, []))


def leave_one_out_dataset(dataset: Dataset) -> Dataset:
    """Every task of a dataset in leave-one-out form, for test-time training."""
    return _derived(dataset, (loo for task in dataset for loo in leave_one_out(task)), "[n-1]")


def split_test_inputs(dataset: Dataset) -> Dataset:
    """One task per test input: a task with k test inputs becomes `<id>_0` … `<id>_<k-1>`.

    Tasks with a single test input keep their id.
    """

    def one_test_tasks(task: Task) -> list[Task]:
        if len(task.test) == 1:
            return [task]
        return [replace(task, task_id=f"{task.task_id}{TEST_INDEX_MARK}{k}", test=[test])
                for k, test in enumerate(task.test)]

    return _derived(dataset, (t for task in dataset for t in one_test_tasks(task)), "[one-test]")
