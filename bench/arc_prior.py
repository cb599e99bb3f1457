"""An ARC prior for the embedded model: LoRA fine-tuning of SmolLM2-135M on ARC-AGI-1 training on this CPU,
validated on held-out dev tasks (loss, and greedy vote-2 without test-time training) before training and at
every checkpoint (issue 21). It resumes from its last checkpoint, and stops and saves after `--hours`.

Dev sets, never trained on: the 24 smallest ARC-AGI-1 training tasks by cell count (`dev`) and the next 12
(`dev2`, ranks 25-36). ARC-AGI-1 evaluation is kept for measurement and ARC-AGI-2 training (which holds
ARC-AGI-1 evaluation tasks) is never used. Every FineTuningConfig field is a flag; `PRIOR_SETTINGS` lists
where this run departs from the library's defaults, and why.
Run: .venv/bin/python bench/arc_prior.py --hours 1 [--adapter_path <an earlier run's adapter>]
     .venv/bin/python bench/arc_prior.py --report   # the dev figures per validated step
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from arc24_lib.config import add_config_arguments, config_from_dict, flags_to_dict, merge_dicts
from arc24_lib.data import Dataset
from arc24_lib.prompting import DEFAULT_PROMPT_VERSION
from arc24_lib.training import FineTuningConfig

DEV_SIZES = {"dev": (0, 24), "dev2": (24, 36)}  # ranks by cell count in ARC-AGI-1 training
VAL_PREDICTIONS = 2  # greedy vote-2 from two augmentations: the dev figures without test-time training
PRIOR_SETTINGS: dict[str, Any] = {
    "train_datasets": [("arc-agi-1/training", DEFAULT_PROMPT_VERSION)],
    "leave_one_out": True,  # the forms test-time training sees, and several samples' worth of each task
    "label_shown_grids": True,  # loss on the shown outputs too, as test-time training: more signal per step
    "lora_layers": 15,  # test-time training's layout: it continues this adapter at its own step time
    "max_seq_len": 1024,  # the dev tasks fit whole; larger tasks are trimmed to fewer pairs (CPU step time)
    "samples_per_step": 8,
    "learning_rate": 2e-4,
    "lr_scheduler_type": "cosine",
    "warmup_ratio": 0.02,
    "max_steps": 3000,  # the schedule's horizon across sessions; --hours ends a session's share
    "problem_augmentation_probability": 0.25,  # A2: some samples transform only one side
    "save_steps": 60,
    "eval_steps": 60,
    "logging_steps": 10,
    "device": "cpu",
}


class StopAfter(TrainerCallback):
    """Ends training after `seconds`, with a checkpoint (and so a validation) at the last step."""

    def __init__(self, seconds: float):
        self.deadline = time.time() + seconds

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if time.time() >= self.deadline:
            control.should_training_stop = control.should_save = control.should_evaluate = True
        return control


def dev_sets(training: Dataset) -> dict[str, list[str]]:
    """The held-out dev sets' task ids by name (see DEV_SIZES)."""
    ranked = sorted(training, key=lambda task: (task.n_cells, task.task_id))
    return {name: [task.task_id for task in ranked[start:end]] for name, (start, end) in DEV_SIZES.items()}


def report(output_dir: Path) -> str:
    """Per validated step and dev set: tasks solved with two attempts and tasks with the right grid among
    the predictions (no test-time training), from the run's validation folders."""
    from arc24_lib.files import read_records
    from arc24_lib.training import VALIDATION_FILE

    dev = json.loads((output_dir / "dev_sets.json").read_text())
    lines = ["| step | validation loss | " + " | ".join(f"{name} solved | {name} right among predictions"
                                                          for name in dev) + " |",
             "|---|---|" + "---|---|" * len(dev)]
    for record in sorted(read_records(output_dir / VALIDATION_FILE), key=lambda r: r["step"]):
        per_task = json.loads((output_dir / "validation" / f"step-{record['step']}" / "metrics.json").read_text())[
            "per_task"]
        cells = [f"{sum(per_task[i]['vote_2'] == 1.0 for i in ids)}/{len(ids)} | "
                 f"{sum(per_task[i]['pass_n'] == 1.0 for i in ids)}/{len(ids)}" for ids in dev.values()]
        loss = "-" if record["eval_loss"] is None else f"{record['eval_loss']:.3f}"
        lines.append(f"| {record['step']} | {loss} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--hours", type=float, default=1.0, help="stop and save after this long")
    parser.add_argument("--report", action="store_true", help="print the dev figures of the run so far and stop")
    add_config_arguments(parser, FineTuningConfig, exclude=("val_dataset",))
    args = vars(parser.parse_args())
    hours, only_report = args.pop("hours"), args.pop("report")
    values = merge_dicts({"output_dir": "outputs/arc_prior", **PRIOR_SETTINGS}, flags_to_dict(args))
    output_dir = Path(values["output_dir"])
    if only_report:
        return print(report(output_dir))

    from arc24_lib.data import load_builtin, load_dataset, save_dataset
    from arc24_lib.partitions import subset_by_ids
    from arc24_lib.training import fine_tune
    from arc24_lib.validation import VoteValidation

    training = load_builtin("arc-agi-1/training")
    dev = dev_sets(training)
    path = save_dataset(subset_by_ids(training, dev["dev"] + dev["dev2"]), output_dir / "dev_challenges.json")
    (output_dir / "dev_sets.json").write_text(json.dumps(dev, indent=1))
    config = config_from_dict(FineTuningConfig, {**values, "val_dataset": (str(path), DEFAULT_PROMPT_VERSION)})
    held_out = load_dataset(path)
    callbacks = [VoteValidation(held_out, config, VAL_PREDICTIONS), StopAfter(hours * 3600)]
    print(json.dumps(fine_tune(config, callbacks=callbacks), indent=2))


if __name__ == "__main__":
    main()
