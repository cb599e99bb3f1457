"""Validation of a fine-tuning run on held-out tasks: greedy vote-2 without test-time training before
training and at every checkpoint, with the validation loss, logged to `validation.jsonl` (T1); `fine_tune`
plots it at the end (`plotting.plot_training`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from arc24_lib.data import Dataset
from arc24_lib.files import JsonlWriter, read_records
from arc24_lib.training import VALIDATION_FILE, FineTuningConfig

logger = logging.getLogger(__name__)


class VoteValidation(TrainerCallback):
    """`predictions` greedy AIRV predictions per test input of the held-out `dataset` (the run's
    `val_dataset`) with the checkpoint's adapter, voted to two attempts, written to the run's
    `validation.jsonl` with the validation loss. Step 0 is the model before training; a resumed run
    validates its checkpoint where a stop came first, and skips the steps it has validated. Add it to
    `fine_tune`'s callbacks."""

    def __init__(self, dataset: Dataset, config: FineTuningConfig, predictions: int = 2):
        from arc24_lib.inference.airv import InferenceConfig
        from arc24_lib.task_format import TaskFormat

        if not config.val_dataset or predictions < 1:
            raise ValueError("vote validation needs the run's val_dataset and at least 1 prediction per test input")
        self.dataset, self.output_dir = dataset, Path(config.output_dir)
        self.inference = InferenceConfig(device=config.device, predictions_per_test_input=predictions,
                                         augmented_scoring=False, max_seq_len=config.max_seq_len)
        # each checkpoint's adapter replaces adapter_path, the one training started from
        self.task_format = TaskFormat(model_path=config.model_path, adapter_path=config.adapter_path,
                                      grid_encoder=config.grid_encoder, prompt_version=config.val_dataset[1])
        self.backend: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # step 0: the model before training; a resumed run: its checkpoint, unless validated before the stop
        step = state.global_step
        self.validate(step, self.task_format.adapter_path if step == 0 else self.checkpoint(args, step), state)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.validate(state.global_step, self.checkpoint(args, state.global_step), state)

    @staticmethod
    def checkpoint(args: Any, step: int) -> str:
        return str(Path(args.output_dir) / f"checkpoint-{step}")

    def validate(self, step: int, adapter: str | None, state: Any) -> None:
        from dataclasses import replace

        from arc24_lib.pipeline import predict

        path = self.output_dir / VALIDATION_FILE
        if any(record["step"] == step for record in read_records(path)):
            return
        started = time.perf_counter()
        config = replace(self.inference, output_dir=str(self.output_dir / "validation" / f"step-{step}"))
        task_format = replace(self.task_format, adapter_path=adapter)
        self.backend = self.backend or config.build_backend(task_format.model_path)
        outputs = predict(self.dataset, config, task_format, self.backend)
        losses = [entry["eval_loss"] for entry in state.log_history if "eval_loss" in entry and entry["step"] == step]
        record = {"step": step, "solved": outputs["solved"], "tasks": len(self.dataset),
                  "vote_2": outputs["summary"]["vote_2"], "pass_n": outputs["summary"]["pass_n"],
                  "eval_loss": losses[-1] if losses else None, "seconds": round(time.perf_counter() - started, 1)}
        logger.info("validation at step %d: %s", step, record)
        with JsonlWriter(path) as writer:
            writer.write([record])
