"""Notebook support: checked papermill parameters and running a notebook headless (K1).

Each notebook in `notebooks/` starts with a cell tagged `parameters`: the notebook's own
settings, then only the fields of its stage configs (`TaskFormat` and `TestTimeConfig` for 03, ...) it
changes from the library's defaults; any other field may be set beside them (or by papermill). The cell after
it calls `bind_parameters` (or `notebook_parameters` where there is no stage config), which fills
in the defaults and rejects a misspelled name or a value of the wrong type with a clear message.
`run_notebook` executes a notebook with papermill:

    python -m arc24_lib.notebooks 03_test_time_fine_tuning -p max_steps 50 -p output_dir outputs/nb
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arc24_lib.config import config_from_dict

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = ("01_data", "02_fine_tuning", "03_test_time_fine_tuning", "04_inference", "05_evaluation",
             "kaggle_submission")
# names IPython and papermill put in a notebook's namespace besides its parameters
_KERNEL_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def _help(text: str) -> Any:
    return field(metadata={"help": text})


@dataclass
class DataParameters:
    """01_data's own parameters; the others are TaskFormat's (model, encoder, prompt) and TestTimeConfig's
    (length)."""

    dataset: str = _help("built-in name (arc-agi-1/training, ...) or path to ARC JSON")
    task_ids: list[str] = _help("tasks to keep; empty: the n_tasks smallest")
    n_tasks: int = _help("how many of the smallest tasks when task_ids is empty")
    output_dir: str = _help("root folder of every notebook's outputs")


@dataclass
class OutputParameters:
    """02_fine_tuning's own parameter; the others are FineTuningConfig's."""

    output_dir: str = _help("root folder of every notebook's outputs; the stage writes to its own subfolder")


@dataclass
class StageParameters(OutputParameters):
    """03's and 04's own parameters; the others are TaskFormat's and their stage config's."""

    tasks_path: str | None = _help("tasks to work on; None: what 01_data wrote")


@dataclass
class EvaluationParameters:
    """05_evaluation: metrics, pictures, per-task list."""

    tasks_path: str | None = _help("tasks with solutions; None: what 01_data wrote")
    predictions_path: str | None = _help("predictions.jsonl; None: what 04 wrote")
    n_pictures: int = _help("tasks to draw")
    output_dir: str = _help("root folder of every notebook's outputs")


def _cell_values(namespace: dict[str, Any], ignore: tuple[str, ...]) -> dict[str, Any]:
    """The variables a notebook's parameters (and papermill's injected) cell set."""
    return {name: value for name, value in namespace.items()
            if not name.startswith("_") and name not in _KERNEL_NAMES and name not in ignore
            and not isinstance(value, types.ModuleType | types.FunctionType | type)}


def _check_required(cls: type, values: dict[str, Any]) -> None:
    """ValueError naming the fields of `cls` without a default that the cell does not set."""
    missing = sorted(f.name for f in dataclasses.fields(cls) if f.name not in values
                     and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
    if missing:
        raise ValueError(f"{cls.__name__}: the parameters cell does not set {', '.join(missing)}")


def notebook_parameters(namespace: dict[str, Any], cls: type, ignore: tuple[str, ...] = ()) -> Any:
    """The notebook's parameters as a checked dataclass: what the cell (or papermill) set, `cls`'s
    defaults for the rest; unknown names and wrong types raise ValueError.

    `ignore` names variables of the notebook's own that are not fields of `cls`.
    """
    values = _cell_values(namespace, ignore)
    _check_required(cls, values)
    return config_from_dict(cls, values)


def bind_parameters(namespace: dict[str, Any], own: type, *stages: type,
                    fixed: tuple[str, ...] = ()) -> tuple[Any, ...]:
    """The notebook's own parameters (every field of `own`, set in its parameters cell) and one config per
    stage class (TaskFormat, then the stage's config): its defaults with any of its fields the cell or
    papermill set. A misspelled name fails with the closest known one, a value of the wrong type with the
    field's type, and a field in `fixed` (the notebook sets it itself) with that reason."""
    from arc24_lib.config import unknown_names_error

    values = _cell_values(namespace, ())
    own_names = [f.name for f in dataclasses.fields(own)]
    stage_names = {stage: [f.name for f in dataclasses.fields(stage)] for stage in stages}
    known = [name for names in stage_names.values() for name in names if name not in own_names]
    if len(set(known)) < len(known):  # a cell's name must say which config it sets
        raise ValueError(f"{', '.join(s.__name__ for s in stages)} share field names; bind them apart")
    _check_required(own, values)
    stage_values = {name: value for name, value in values.items() if name not in own_names}
    unknown = sorted(set(stage_values) - set(known))
    if unknown:
        raise unknown_names_error(" or ".join(s.__name__ for s in stages), unknown, own_names + known)
    clash = sorted(set(stage_values) & set(fixed))
    if clash:
        raise ValueError(f"{', '.join(clash)}: set by the notebook itself, not a parameter")
    return (config_from_dict(own, {name: values[name] for name in own_names if name in values}),
            *(config_from_dict(stage, {k: v for k, v in stage_values.items() if k in names})
              for stage, names in stage_names.items()))


def parameters_cell(name: str) -> dict[str, Any]:
    """The values a notebook's `parameters` cell assigns, read as Python literals (nothing is run)."""
    import ast
    import json

    cells = json.loads(notebook_path(name).read_text())["cells"]
    cell = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    tree = ast.parse("".join(cell["source"]))
    return {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)}


def notebook_path(name: str, suffix: str = ".ipynb") -> Path:
    """The path of a notebook of this repository by name."""
    if name not in NOTEBOOKS:
        raise ValueError(f"unknown notebook {name!r}; choose one of {', '.join(NOTEBOOKS)}")
    return NOTEBOOKS_DIR / f"{name}{suffix}"


class _KnownParameters(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passed unknown parameter")


def run_notebook(name: str, parameters: dict[str, Any], executed_dir: str | Path,
                 progress_bar: bool = True) -> Path:
    """Execute a notebook with papermill; the executed copy is saved as `executed_dir/<name>.ipynb`."""
    import papermill

    executed = Path(executed_dir) / f"{name}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    # the kernel must be this interpreter, with arc24_lib importable
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    # papermill warns of every parameter its cell does not list; the cell lists only the notebook's own ones and
    # the stage settings it changes, and bind_parameters checks the rest against the stage config
    logging.getLogger("papermill").addFilter(_KnownParameters())
    papermill.execute_notebook(str(notebook_path(name)), str(executed), parameters=parameters,
                               progress_bar=progress_bar, kernel_name="python3", language="python",
                               cwd=os.getcwd())
    return executed


def _parse_value(text: str) -> Any:
    """A `-p` value: JSON where it parses (numbers, true/false, null, lists), else the string itself."""
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> None:
    """Command line: run one notebook headless with `-p name value` parameters."""
    parser = argparse.ArgumentParser(description="run an arc24 notebook with papermill")
    parser.add_argument("notebook", choices=NOTEBOOKS)
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--executed-dir", default="outputs/notebooks/executed")
    args = parser.parse_args(argv)
    parameters = {name: _parse_value(value) for name, value in args.parameter}
    print(run_notebook(args.notebook, parameters, args.executed_dir))


if __name__ == "__main__":
    main()
