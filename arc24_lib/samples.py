"""Training samples made on the fly: draw a task, augment it afresh, prompt, tokenize (T1, T2)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from arc24_lib.augmentation import AugmentationConfig, augment_task, sample_augmentation, sample_pool_task
from arc24_lib.data import Task
from arc24_lib.encoders import GridEncoder
from arc24_lib.problem_augmentation import (
    ProblemAugmentationConfig,
    apply_problem_augmentation,
    sample_problem_augmentation,
)
from arc24_lib.prompting import IGNORE_INDEX, fit_prompt, tokenize_prompt

logger = logging.getLogger(__name__)


@dataclass
class SampleSource:
    """Tasks to draw from and the prompt version to render them with."""

    tasks: Sequence[Task]
    prompt_version: str


@dataclass
class SampleCounts:
    """What the sampler made and what it had to trim or skip."""

    made: int = 0
    trimmed: int = 0  # samples that fit only after dropping train pairs
    skipped: int = 0  # samples too long even with a single train pair
    skipped_tasks: dict[str, int] = field(default_factory=dict)


class TrainingSamples(torch.utils.data.IterableDataset):
    """An endless, seeded stream of tokenized samples, labelled on the answer (and, with
    `label_shown_grids`, on the train outputs shown in the prompt too).

    Each sample picks a source (in turn), a task at random, a pool draw for pool tasks, an
    optional problem augmentation, a fresh task augmentation and a test input; samples over
    `max_seq_len` are trimmed by dropping train pairs, else skipped and counted, never cut.
    The stream restarts identically for the same seed, so a resumed run sees the same data.
    """

    def __init__(self, sources: Sequence[SampleSource], encoder: GridEncoder, tokenizer: Any, max_seq_len: int,
                 seed: int, augmentation: AugmentationConfig | None = None,
                 problem_augmentation: ProblemAugmentationConfig | None = None, max_skips: int = 1000,
                 label_shown_grids: bool = False):
        if not any(source.tasks for source in sources):
            raise ValueError("no tasks to make training samples from")
        self.sources = [source for source in sources if source.tasks]
        self.encoder, self.tokenizer, self.max_seq_len, self.seed = encoder, tokenizer, max_seq_len, seed
        self.augmentation = augmentation or AugmentationConfig()
        self.problem_augmentation = problem_augmentation or ProblemAugmentationConfig()
        self.max_skips = max_skips
        self.label_shown_grids = label_shown_grids
        self.counts = SampleCounts()

    def __iter__(self) -> Iterator[dict[str, list[int]]]:
        rng = np.random.default_rng(self.seed)
        skipped_in_a_row = 0
        for index in itertools.count():
            source = self.sources[index % len(self.sources)]
            sample = self.make_sample(source.tasks[int(rng.integers(len(source.tasks)))], source.prompt_version, rng)
            if sample is None:
                skipped_in_a_row += 1
                if skipped_in_a_row >= self.max_skips:
                    raise RuntimeError(f"{self.max_skips} samples in a row were longer than max_seq_len "
                                       f"{self.max_seq_len}; raise max_seq_len or drop the long tasks")
                continue
            skipped_in_a_row = 0
            yield sample

    def make_sample(self, task: Task, prompt_version: str, rng: np.random.Generator) -> dict[str, list[int]] | None:
        """One tokenized sample of a task, or None (counted) when it cannot fit."""
        if task.n_train is not None:
            task = sample_pool_task(task, rng)
        task = apply_problem_augmentation(task, sample_problem_augmentation(task, rng, self.problem_augmentation))
        task = augment_task(task, sample_augmentation(task, rng, self.augmentation))
        test_index = int(rng.integers(len(task.test)))
        prompt, dropped = fit_prompt(task, self.encoder, prompt_version, self.tokenizer, self.max_seq_len,
                                     test_index)
        if prompt is None:
            self.counts.skipped += 1
            self.counts.skipped_tasks[task.task_id] = self.counts.skipped_tasks.get(task.task_id, 0) + 1
            return None
        self.counts.made += 1
        self.counts.trimmed += dropped > 0
        input_ids, labels = tokenize_prompt(self.tokenizer, prompt, self.label_shown_grids)
        return {"input_ids": input_ids, "labels": labels}


def fixed_samples(tasks: Sequence[Task], prompt_version: str, encoder: GridEncoder, tokenizer: Any,
                  max_seq_len: int) -> list[dict[str, list[int]]]:
    """One unaugmented sample per test input (for validation); those that cannot fit are left out."""
    samples = []
    for task in tasks:
        for test_index in range(len(task.test)):
            prompt, _ = fit_prompt(task, encoder, prompt_version, tokenizer, max_seq_len, test_index)
            if prompt is not None:
                input_ids, labels = tokenize_prompt(tokenizer, prompt)
                samples.append({"input_ids": input_ids, "labels": labels})
    return samples


class PadCollator:
    """Pads a batch on the right: pad token in the ids, IGNORE_INDEX in the labels, 0 in the mask."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, batch: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        length = max(len(sample["input_ids"]) for sample in batch)
        input_ids = torch.full((len(batch), length), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(batch), length), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), length), dtype=torch.long)
        for row, sample in enumerate(batch):
            n = len(sample["input_ids"])
            input_ids[row, :n] = torch.tensor(sample["input_ids"])
            labels[row, :n] = torch.tensor(sample["labels"])
            attention_mask[row, :n] = 1
        return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


def with_labelled_logits_only(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch plus what makes a causal LM compute logits only at the positions that predict a
    label (`logits_to_keep`) and their targets (`shift_labels`): same loss, and the vocabulary
    projection of every other position is skipped."""
    labels = batch["labels"]
    positions = (labels[:, 1:] != IGNORE_INDEX).any(dim=0).nonzero().flatten()
    return {**batch, "logits_to_keep": positions, "shift_labels": labels[:, positions + 1]}
