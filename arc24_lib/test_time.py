"""Test-time fine-tuning: a LoRA adapter per task trained on its own train pairs in leave-one-out
form, bounded by steps and by a time budget (T2)."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arc24_lib.data import Dataset, Task, task_path
from arc24_lib.files import JsonlWriter, read_records, write_json_atomic
from arc24_lib.task_format import TaskFormat
from arc24_lib.training import TrainingOptions

logger = logging.getLogger(__name__)
RESULT_FILE = "ttt_result.json"
SUMMARY_FILE = "ttt_summary.jsonl"
CONFIG_FILE = "test_time_config.json"


@dataclass
class TestTimeConfig(TrainingOptions):
    """Test-time fine-tuning of one adapter per task (or one shared by all tasks); the model, encoder, prompt
    and augmentations are the run's TaskFormat, given beside it."""

    __test__ = False  # not a pytest test class despite its name

    output_dir: str = field(default="outputs/test_time_fine_tuning", metadata={"help": "one folder per task"})
    max_seq_len: int = field(default=4096, metadata={"help": "longest sample in tokens; longer ones are trimmed"})
    max_steps: int = field(default=1000, metadata={
        "help": "optimizer steps per task at most; on a CPU the time budget ends a task first"})
    learning_rate: float = field(default=1e-3, metadata={"help": "peak learning rate"})
    samples_per_step: int = field(default=1, metadata={"help": "samples per optimizer step"})
    lora_layers: int | None = field(default=15, metadata={
        "help": "adapters on the last this many decoder layers only (half of SmolLM2-135M's 30: faster steps); "
                "None, or a model with fewer layers: all layers"})
    logging_steps: int = field(default=5, metadata={"help": "log the loss every this many steps"})
    time_budget_s: float | None = field(default=None, metadata={
        "help": "seconds of a task's training, setup included; it stops before a step that would end later"})
    label_shown_grids: bool = field(default=True, metadata={
        "help": "loss on the train outputs shown in the prompt too, so each step trains on several grids"})
    reduced_vocabulary: bool = field(default=True, metadata={
        "help": "the loss over the few dozen tokens the encoder and prompt can write (arc24_lib.vocabulary), the "
                "vocabulary projection cut to them (bench/README.md: 7% more steps in the budget); saved beside "
                "each adapter, inference keeps to them; LoRA only"})
    early_stop_loss: float | None = field(default=None, metadata={
        "help": "stop a task once a logged loss falls below this; None trains to the budget"})
    decay_floor: float = field(default=0.1, metadata={
        "help": "the learning rate decays on a cosine to this share of the peak over whichever ends first, "
                "max_steps or time_budget_s"})
    shared_adapter: bool = field(default=False, metadata={"help": "one adapter for all tasks together"})
    min_train_pairs: int = field(default=2, metadata={"help": "tasks with fewer train pairs are skipped"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_train_pairs < 2:
            raise ValueError("min_train_pairs must be at least 2: leave-one-out needs two train pairs")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError(f"time_budget_s is {self.time_budget_s}; give a positive number of seconds")
        if not 0 <= self.decay_floor <= 1:
            raise ValueError(f"decay_floor is {self.decay_floor}; give a share of the peak rate, 0 to 1")


def budget_progress(step: int, max_steps: int, elapsed_s: float, time_budget_s: float | None) -> float:
    """How far a run is through its budget (0 to 1): the larger of its step and time shares. The first
    step has none: its time share would be the setup's alone, and would make a run whose steps end first
    train differently from one launch to the next (Adam turns any difference into a step-sized one)."""
    progress = step / max_steps
    if time_budget_s is not None and step > 0:
        progress = max(progress, elapsed_s / time_budget_s)
    return min(1.0, progress)


def cosine_rate(peak: float, progress: float, floor: float) -> float:
    """Cosine from `peak` at progress 0 to `floor × peak` at progress 1."""
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def budget_lr_multiplier(config: TestTimeConfig, start: float | None = None) -> Callable[[int], float]:
    """Share of the peak learning rate per step: a cosine to `decay_floor` over whichever of
    `max_steps` and `time_budget_s` ends first. The clock starts at `start` (a `perf_counter`
    time), or else at the first call (step 0)."""

    def multiplier(step: int) -> float:
        nonlocal start
        start = time.perf_counter() if start is None else start
        progress = budget_progress(step, config.max_steps, time.perf_counter() - start, config.time_budget_s)
        return cosine_rate(1.0, progress, config.decay_floor)

    return multiplier


def budget_callback(config: TestTimeConfig, start: float | None = None) -> Any:
    """The callback that ends test-time training within `time_budget_s`, counted from `start` (a
    `perf_counter` time, e.g. before the model loads) or else from the first step."""
    from transformers import TrainerCallback

    class WithinBudget(TrainerCallback):
        """Stops training before a step that would end past the time budget, or once a logged loss
        is below `early_stop_loss`."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter() if start is None else start
            self.step_start, self.reason = time.perf_counter(), "max_steps"

        def on_step_end(self, args, state, control, **kwargs):
            now = time.perf_counter()
            last_step_s, self.step_start = now - self.step_start, now
            if config.time_budget_s is not None and now - self.start + last_step_s >= config.time_budget_s:
                control.should_training_stop, self.reason = True, "time_budget"
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):
            if config.early_stop_loss is None or not logs or "loss" not in logs:
                return control
            if logs["loss"] < config.early_stop_loss:
                control.should_training_stop, self.reason = True, "early_stop_loss"
            return control

    return WithinBudget()


def task_samples(tasks: list[Task], config: TestTimeConfig, task_format: TaskFormat, tokenizer: Any) -> Any:
    """The seeded stream of augmented samples test-time training draws from: the leave-one-out forms of
    `tasks` in `task_format` (prompt, encoder, augmentation), at `config`'s length."""
    from arc24_lib.partitions import leave_one_out
    from arc24_lib.samples import SampleSource, TrainingSamples

    forms = [form for task in tasks for form in leave_one_out(task)]
    return TrainingSamples([SampleSource(forms, task_format.prompt_version)], task_format.encoder,
                           tokenizer, config.max_seq_len, config.random_seed, task_format.augmentation,
                           config.problem_augmentation_config(), max_skips=200,
                           label_shown_grids=config.label_shown_grids)


def _train_adapter(tasks: list[Task], name: str, config: TestTimeConfig, task_format: TaskFormat, tokenizer: Any,
                   device: str, output_dir: Path) -> dict[str, Any]:
    """Train one adapter on the leave-one-out forms of `tasks`; save it and return its result."""
    from arc24_lib.training import kept_vocabulary, make_trainer, prepare_model, training_arguments
    from arc24_lib.vocabulary import KeptRows, cut_head, save_vocabulary

    start = time.perf_counter()
    samples = task_samples(tasks, config, task_format, tokenizer)
    stopper = budget_callback(config, start)  # the budget counts the setup too
    args = training_arguments(config, output_dir / "trainer", device, disable_tqdm=True)
    model = prepare_model(config, device, task_format.model_path, task_format.adapter_path)
    kept = kept_vocabulary(config, tokenizer, task_format.encoder, [task_format.prompt_version])
    rows = None if kept is None else KeptRows(kept, model.config.vocab_size, tokenizer)
    trainer = make_trainer(model, tokenizer, args, samples, callbacks=[stopper],
                           lr_multiplier=budget_lr_multiplier(config, start), rows=rows)
    with cut_head(model, rows) if rows is not None else nullcontext():
        mean_loss = trainer.train().training_loss
    trainer.model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    if kept is not None:
        save_vocabulary(kept, output_dir)
    # the logged losses, or the run's mean loss when it ended before the first log
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry] or [mean_loss]
    return {"task_id": name, "status": "trained", "stop_reason": stopper.reason, "steps": trainer.state.global_step,
            "seconds": round(time.perf_counter() - start, 2), "first_loss": losses[0],
            "final_loss": losses[-1], "samples_trimmed": samples.counts.trimmed,
            "samples_skipped": samples.counts.skipped, "adapter_path": str(output_dir)}


def _skip_reason(task: Task, config: TestTimeConfig, task_format: TaskFormat, tokenizer: Any) -> str | None:
    from arc24_lib.partitions import leave_one_out
    from arc24_lib.prompting import fit_prompt

    if len(task.train) < config.min_train_pairs:
        return f"only {len(task.train)} train pairs; leave-one-out needs {config.min_train_pairs}"
    if not any(fit_prompt(form, task_format.encoder, task_format.prompt_version, tokenizer, config.max_seq_len)[0]
               for form in leave_one_out(task)):
        return f"no leave-one-out prompt fits max_seq_len {config.max_seq_len}"
    return None


def _summarize(result: dict[str, Any], root: Path) -> None:
    """Append `result` to the run's summary unless it is there already."""
    if result not in read_records(root / SUMMARY_FILE):
        with JsonlWriter(root / SUMMARY_FILE) as summary:
            summary.write([result])


def fine_tune_at_test_time(dataset: Dataset, config: TestTimeConfig,
                           task_format: TaskFormat | None = None) -> list[dict[str, Any]]:
    """Train an adapter per task (or one shared) in `task_format` (default: TaskFormat()); skip and
    report tasks that cannot be trained.

    Each task's adapter and `ttt_result.json` go to `output_dir/<task_id>/`; a rerun keeps the
    tasks already done. One line per task is appended to `output_dir/ttt_summary.jsonl`; the format
    is saved in `output_dir` (task_format.FORMAT_FILE), where inference with the adapters reads it.
    """
    from tqdm.auto import tqdm
    from transformers import set_seed

    from arc24_lib.config import save_config
    from arc24_lib.models import default_device, load_tokenizer

    task_format = task_format or TaskFormat()
    root = Path(config.output_dir)
    save_config(config, root / CONFIG_FILE)
    task_format.save(root)
    device = config.device or default_device()
    tokenizer = load_tokenizer(task_format.model_path)
    groups = [("shared", list(dataset))] if config.shared_adapter else [(t.task_id, [t]) for t in dataset]
    results = []
    for name, tasks in tqdm(groups, desc="test-time fine-tuning", unit="task"):
        folder = task_path(root, name)
        if (folder / RESULT_FILE).exists():  # done in an earlier run; failed tasks are tried again
            previous = json.loads((folder / RESULT_FILE).read_text())
            if previous["status"] != "failed":
                results.append(previous)
                _summarize(previous, root)  # where a crash came between its result and its summary line
                continue
        reasons = {task.task_id: _skip_reason(task, config, task_format, tokenizer) for task in tasks}
        trainable = [task for task in tasks if reasons[task.task_id] is None]
        try:
            if not trainable:
                result = {"task_id": name, "status": "skipped", "reason": "; ".join(filter(None, reasons.values()))}
            else:
                set_seed(config.random_seed)
                logger.info("task %s: test-time training starts", name)
                result = _train_adapter(trainable, name, config, task_format, tokenizer, device, folder)
        except Exception as error:  # one failing task must not sink the run
            logger.exception("test-time fine-tuning failed for %s", name)
            result = {"task_id": name, "status": "failed", "reason": f"{type(error).__name__}: {error}"}
        if result["status"] != "trained":
            logger.warning("task %s %s: %s", name, result["status"], result["reason"])
        write_json_atomic(result, folder / RESULT_FILE, indent=2)
        _summarize(result, root)
        results.append(result)
    return results
