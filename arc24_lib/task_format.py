"""What test-time training and inference must agree on, held once: the model, the adapter training starts
from, how a task becomes text (grid encoder, prompt version) and the augmentations its samples and
predictions are spread over. Test-time training saves it beside its adapters; inference with those
adapters reads it from there."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from arc24_lib.augmentation import AugmentationConfig, per_task_augmentation
from arc24_lib.encoders import DEFAULT_ENCODER, GridEncoder, parse_encoder
from arc24_lib.prompting import DEFAULT_PROMPT_VERSION, check_prompt_version

logger = logging.getLogger(__name__)
FORMAT_FILE = "task_format.json"  # beside test-time training's adapters


@dataclass
class TaskFormat:
    """The model and the task's text form, read by test-time training and inference alike."""

    model_path: str = field(default="embedded", metadata={"help": "model folder, hub id or `embedded`"})
    adapter_path: str | None = field(default=None, metadata={
        "help": "LoRA adapter that test-time training starts from; inference's adapter for a task without one "
                "of its own (for every task where there are no per-task adapters)"})
    grid_encoder: str = field(default=DEFAULT_ENCODER, metadata={"help": "grid encoder string (R1)"})
    prompt_version: str = field(default=DEFAULT_PROMPT_VERSION, metadata={"help": "prompt version (R2)"})
    augmentation: AugmentationConfig = field(default_factory=per_task_augmentation, metadata={
        "help": "the augmentations of training samples and of the prompts predictions are spread over"})

    def __post_init__(self) -> None:
        check_prompt_version(self.prompt_version)
        self.encoder  # a bad encoder string fails here, before any stage starts  # noqa: B018

    @cached_property
    def encoder(self) -> GridEncoder:
        """`grid_encoder` parsed, once per format."""
        return parse_encoder(self.grid_encoder)

    def save(self, folder: str | Path) -> Path:
        from arc24_lib.config import save_config

        return save_config(self, Path(folder) / FORMAT_FILE)


def saved_format(folder: str | Path | None) -> TaskFormat | None:
    """The format test-time training saved in `folder` (its adapters' root), None where there is none."""
    from arc24_lib.config import load_config

    path = Path(folder or "") / FORMAT_FILE
    return load_config(TaskFormat, path) if folder and path.exists() else None


def adapters_format(adapters_dir: str | Path | None, given: TaskFormat | None = None) -> TaskFormat:
    """The format to infer with: the one saved beside `adapters_dir`'s adapters where there is one, else
    `given` (else the defaults). A field of `given` set away from its default to another value than the
    saved one is refused, naming the fields: adapters answer only in the form they were trained on."""
    saved = saved_format(adapters_dir)
    if saved is None:
        return given or TaskFormat()
    defaults, given = TaskFormat(), given or TaskFormat()
    fields = [f.name for f in dataclasses.fields(TaskFormat)
              if getattr(defaults, f.name) != getattr(given, f.name) != getattr(saved, f.name)]
    if fields:
        raise ValueError(f"task format {', '.join(fields)} differ(s) from what the adapters in {adapters_dir} were "
                         f"trained with ({Path(adapters_dir or '') / FORMAT_FILE}); leave them unset to use theirs")
    return saved
