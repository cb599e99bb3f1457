"""Augmented scoring, the stage after AIRV: the log-probability of each candidate grid of a test
input, averaged over every augmented prompt AIRV used for it (a product of experts, as the 2024
winners scored). Selection then submits the grids the model finds most likely from all points of
view, not the ones it wrote most often (I3). scores.jsonl keeps each prompt's log-probability beside
their mean, so another way of combining them can be replayed on a run's own candidates."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from arc24_lib.augmentation import TaskAugmentation, augment_task
from arc24_lib.data import Dataset, Example, Task
from arc24_lib.encoders import GridEncoder
from arc24_lib.files import JsonlWriter, read_records
from arc24_lib.inference.backend import Backend, backend_tokenizer
from arc24_lib.inference.records import PREDICTIONS_FILE, SCORES_FILE, adapter_for, read_scores
from arc24_lib.prompting import fit_prompt
from arc24_lib.selection import N_ATTEMPTS, GridKey, group_records, rank_candidates
from arc24_lib.task_format import TaskFormat

logger = logging.getLogger(__name__)


def scoring_prompts(task: Task, test_index: int, candidates: list[GridKey], augmentations: list[TaskAugmentation],
                    encoder: GridEncoder, prompt_version: str, tokenizer: Any,
                    max_seq_len: int) -> list[tuple[int, str, str]]:
    """(candidate index, prompt, answer) for every candidate under every augmentation that fits."""
    items = []
    for index, grid in enumerate(candidates):
        test = list(task.test)
        test[test_index] = Example(test[test_index].input, np.array(grid, dtype=np.int8))
        with_candidate = replace(task, test=test)
        for augmentation in augmentations:
            prompt, _ = fit_prompt(augment_task(with_candidate, augmentation), encoder, prompt_version, tokenizer,
                                   max_seq_len, test_index)
            if prompt is not None:
                items.append((index, prompt.text, prompt.answer))
    return items


def score_task(task: Task, records: list[dict[str, Any]], backend: Backend, adapter: str | None,
               encoder: GridEncoder, prompt_version: str, tokenizer: Any, max_seq_len: int,
               max_candidates: int) -> list[dict[str, Any]]:
    """Score records for each test input of a task with more distinct predicted grids than attempts
    (with fewer, every grid is submitted: nothing to choose)."""
    groups = group_records(records)
    results = []
    for test_index in range(len(task.test)):
        group = groups.get((task.task_id, test_index), [])
        candidates = [candidate.grid for candidate in rank_candidates(group)[:max_candidates]]
        if len(candidates) <= N_ATTEMPTS:
            continue
        logger.info("task %s test input %d: scoring %d candidates", task.task_id, test_index, len(candidates))
        augmentations = list({json.dumps(r["augmentation"], sort_keys=True): TaskAugmentation.from_dict(
            r["augmentation"]) for r in group}.values())
        # a scored sequence leaves room for one generated token: vLLM refuses a prompt of max_model_len tokens
        items = scoring_prompts(task, test_index, candidates, augmentations, encoder, prompt_version, tokenizer,
                                max_seq_len - 1)
        logprobs = backend.score([prompt for _, prompt, _ in items], [answer for _, _, answer in items], adapter)
        experts: list[list[float]] = [[] for _ in candidates]  # per candidate, its log-probability per prompt
        for (index, _, _), logprob in zip(items, logprobs, strict=True):
            experts[index].append(float(logprob))
        for grid, expert_logprobs in zip(candidates, experts, strict=True):
            if expert_logprobs:
                results.append({"task_id": task.task_id, "test_index": test_index, "grid": [list(r) for r in grid],
                                "score": float(np.mean(expert_logprobs)), "n_prompts": len(expert_logprobs),
                                "logprobs": expert_logprobs})
    return results


def score_predictions(dataset: Dataset, config: Any, task_format: TaskFormat, backend: Backend,
                      tokenizer: Any = None, deadline: float | None = None) -> Path:
    """Augmented scores of every task's predictions in `config.output_dir` (an InferenceConfig) in
    `task_format` (a TaskFormat), appended to scores.jsonl as each test input completes; test inputs
    already scored are kept. A task that fails, and every test input left at `deadline` (a
    `time.perf_counter()` time), are left to plain voting."""
    from tqdm.auto import tqdm

    output_dir = Path(config.output_dir)
    path = output_dir / SCORES_FILE
    done = set(read_scores(path))
    records = [r for r in read_records(output_dir / PREDICTIONS_FILE)
               if (r["task_id"], r["test_index"]) not in done]
    by_task: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_task.setdefault(record["task_id"], []).append(record)
    encoder, tokenizer = task_format.encoder, tokenizer or backend_tokenizer(backend, task_format.model_path)
    with JsonlWriter(path) as writer:
        for task in tqdm([t for t in dataset if t.task_id in by_task], desc="augmented scoring", unit="task"):
            try:
                adapter = adapter_for(task.task_id, config.adapters_dir, task_format.adapter_path)
                for key, group in sorted(group_records(by_task[task.task_id]).items()):  # one test input at a time
                    if deadline is not None and time.perf_counter() >= deadline:
                        logger.warning("deadline passed: test input %s and the rest are selected by votes", key)
                        return path
                    writer.write(score_task(task, group, backend, adapter, encoder, task_format.prompt_version,
                                            tokenizer, config.max_seq_len, config.scored_candidates))
            except Exception as error:  # scores only refine the ranking: voting still works without them
                logger.error("augmented scoring failed for task %s: %s: %s", task.task_id, type(error).__name__,
                             error)
    return path
