"""Notebook support: checked papermill parameters and running a notebook headless (K1).

Each notebook in `notebooks/` starts with a cell tagged `parameters`; the cell after it calls
`notebook_parameters(globals(), XParameters)`, which rejects a misspelled name or a value of
the wrong type with a clear message. `run_notebook` executes a notebook with papermill:

    python -m arc24_lib.notebooks 03_test_time_fine_tuning -p max_steps 50 -p output_dir outputs/nb
"""

from __future__ import annotations

import argparse
import dataclasses
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
    """01_data: pick tasks, draw them, measure their prompts."""

    dataset: str = _help("built-in name (arc-agi-1/training, ...) or path to ARC JSON")
    task_ids: list[str] = _help("tasks to keep; empty: the n_tasks smallest")
    n_tasks: int = _help("how many of the smallest tasks when task_ids is empty")
    model_path: str = _help("model whose tokenizer counts tokens")
    grid_encoder: str = _help("grid encoder string")
    prompt_version: str = _help("prompt version")
    max_seq_len: int = _help("the length the token table is measured against")
    output_dir: str = _help("root folder of every notebook's outputs")


@dataclass
class FineTuningParameters:
    """02_fine_tuning: LoRA or full fine-tuning on a dataset."""

    train_dataset: str = _help("dataset to train on")
    val_dataset: str | None = _help("dataset for the validation loss, or None")
    prompt_version: str = _help("prompt version")
    model_path: str = _help("base model")
    adapter_path: str | None = _help("adapter to continue, or None")
    grid_encoder: str = _help("grid encoder string")
    max_seq_len: int = _help("longest sample in tokens")
    max_steps: int = _help("optimizer steps")
    learning_rate: float = _help("peak learning rate")
    batch_size: int = _help("effective batch")
    use_lora: bool = _help("LoRA (true) or full fine-tuning (false)")
    lora_r: int = _help("LoRA rank")
    output_dir: str = _help("root folder of every notebook's outputs")


@dataclass
class TestTimeParameters:
    """03_test_time_fine_tuning: one adapter per task."""

    __test__ = False
    tasks_path: str | None = _help("tasks to train on; None: what 01_data wrote")
    model_path: str = _help("base model")
    adapter_path: str | None = _help("adapter to start from, or None")
    grid_encoder: str = _help("grid encoder string")
    prompt_version: str = _help("prompt version")
    max_seq_len: int = _help("longest sample in tokens")
    max_steps: int = _help("optimizer steps per task")
    learning_rate: float = _help("learning rate")
    lora_r: int = _help("LoRA rank")
    lora_layers: int | None = _help("adapters on the last this many decoder layers only (faster steps); None: all")
    label_shown_grids: bool = _help("loss on the train outputs in the prompt too, not only the answer")
    one_kind_augmentation: bool = _help("each sample gets a new geometry or new colours, not both (04 must agree)")
    keep_rule_colors: bool = _help("the rule's own colours (augmentation.rule_colors) stay fixed (04 must agree)")
    own_frame_probability: float = _help("chance a sample keeps the task's own frame (ignored with one_kind)")
    own_frame_share: float = _help("share of the time for a second adapter per task trained in its own frame only "
                                   "(0: none); 04 predicts with it too, and its sure grids take the second attempt")
    time_budget_s: float | None = _help("seconds of training per task, or None")
    decay_over_budget: bool = _help("cosine learning-rate decay over max_steps or time_budget_s, whichever ends first")
    early_stop_loss: float | None = _help("stop a task when its loss falls below this, or None")
    output_dir: str = _help("root folder of every notebook's outputs")


@dataclass
class InferenceParameters:
    """04_inference: AIRV, voting, submission.json."""

    tasks_path: str | None = _help("tasks to predict; None: what 01_data wrote")
    model_path: str = _help("base model")
    adapters_dir: str | None = _help("per-task adapters; None: what 03 wrote (if it ran)")
    backend: str = _help("hf or vllm")
    grid_encoder: str = _help("grid encoder string")
    prompt_version: str = _help("prompt version")
    predictions_per_test_input: int = _help("augmented predictions per test input")
    augmented_scoring: bool = _help("rank candidates by their score under every augmented prompt")
    one_kind_augmentation: bool = _help("predictions take turns: new geometry in own colours, new colours in own frame")
    keep_rule_colors: bool = _help("the rule's own colours stay fixed, as 03 trained")
    hold_shape: bool = _help("hold each answer's rows to the shape its header declares")
    max_seq_len: int = _help("prompt + answer tokens")
    output_dir: str = _help("root folder of every notebook's outputs")


@dataclass
class EvaluationParameters:
    """05_evaluation: metrics, pictures, per-task list."""

    tasks_path: str | None = _help("tasks with solutions; None: what 01_data wrote")
    predictions_path: str | None = _help("predictions.jsonl; None: what 04 wrote")
    n_pictures: int = _help("tasks to draw")
    output_dir: str = _help("root folder of every notebook's outputs")


def notebook_parameters(namespace: dict[str, Any], cls: type, ignore: tuple[str, ...] = ()) -> Any:
    """The notebook's parameters as a checked dataclass; unknown names and wrong types raise ValueError.

    `ignore` names variables of the notebook's own that are not fields of `cls`.
    """
    values = {name: value for name, value in namespace.items()
              if not name.startswith("_") and name not in _KERNEL_NAMES and name not in ignore
              and not isinstance(value, types.ModuleType | types.FunctionType | type)}
    known = {f.name for f in dataclasses.fields(cls)}
    missing = sorted(known - set(values))
    if missing:
        raise ValueError(f"{cls.__name__}: the parameters cell does not set {', '.join(missing)}")
    return config_from_dict(cls, values)


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


def run_notebook(name: str, parameters: dict[str, Any], executed_dir: str | Path,
                 progress_bar: bool = True) -> Path:
    """Execute a notebook with papermill; the executed copy is saved as `executed_dir/<name>.ipynb`."""
    import papermill

    executed = Path(executed_dir) / f"{name}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    # the kernel must be this interpreter, with arc24_lib importable
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
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
