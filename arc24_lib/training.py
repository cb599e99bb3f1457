"""Fine-tuning with the Hugging Face Trainer and PEFT: LoRA or full weights, answer-only loss (T1).

Run from the command line (one process, or several through accelerate's torchrun launcher, `--multi_gpu`,
which on a machine without GPUs starts CPU processes over gloo; its `--cpu` would start only one):
    python -m arc24_lib.training --train_datasets arc-agi-1/training output-from-examples-v2 \\
        --max_steps 1000 --output_dir outputs/ft
    accelerate launch --multi_gpu --num_processes 2 -m arc24_lib.training ...
Under several processes each takes its own share of every batch of the one sample stream, so
`samples_per_step` stays the effective batch and the samples are those a single process would train on.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arc24_lib.augmentation import AugmentationConfig
from arc24_lib.config import parse_config, save_config
from arc24_lib.data import Dataset, Task
from arc24_lib.encoders import DEFAULT_ENCODER
from arc24_lib.files import read_records, write_json_atomic
from arc24_lib.partitions import leave_one_out_known_pairs
from arc24_lib.problem_augmentation import ProblemAugmentationConfig
from arc24_lib.prompting import DEFAULT_PROMPT_VERSION, PROMPT_VERSIONS, check_prompt_version

logger = logging.getLogger(__name__)

TRAIN_TASKS_FILE = "train_tasks.json"  # the data list beside a fine-tuned model: task ids per train dataset
VALIDATION_FILE = "validation.jsonl"  # held-out vote-2 per checkpoint (validation.VoteValidation)
PLOT_FILE = "training.png"  # losses and held-out vote-2 against the step
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "warmup_stable_decay")


@dataclass
class TrainingOptions:
    """What fine-tuning and test-time fine-tuning share: optimisation and LoRA. The model, encoder and task
    augmentations are each stage's own (fine-tuning's fields, test-time training's TaskFormat)."""

    output_dir: str = field(default="outputs/fine_tuning", metadata={"help": "where results are written"})
    device: str | None = field(default=None, metadata={"help": "cpu or cuda; default: cuda when visible"})
    max_seq_len: int = field(default=2048, metadata={"help": "longest sample in tokens; longer ones are trimmed"})
    # --- optimisation ---
    max_steps: int = field(default=1000, metadata={"help": "optimizer steps"})
    learning_rate: float = field(default=1e-4, metadata={"help": "peak learning rate"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm"})
    samples_per_step: int = field(default=16, metadata={
        "help": "samples per optimizer step (the effective batch, over gradient accumulation and processes)"})
    per_device_train_batch_size: int = field(default=1, metadata={"help": "samples per forward pass"})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "trade compute for memory"})
    mixed_precision: str = field(default="auto", metadata={
        "help": "auto: bf16 where the GPU or CPU computes it natively (AVX512-BF16/AMX), fp16 on older GPUs, "
                "else fp32", "choices": ("auto", "bf16", "fp16", "fp32")})
    random_seed: int = field(default=7, metadata={"help": "seed of sampling, augmentation and init"})
    logging_steps: int = field(default=10, metadata={"help": "log the loss every this many steps"})
    report_to: list[str] = field(default_factory=list, metadata={"help": "tensorboard and/or wandb"})
    label_shown_grids: bool = field(default=False, metadata={
        "help": "put the loss on the train outputs shown in the prompt as well as on the answer"})
    reduced_vocabulary: bool = field(default=False, metadata={
        "help": "LoRA only: the loss over the tokens the encoder and prompt can write (arc24_lib.vocabulary), "
                "the vocabulary projection cut to them; saved beside the adapter, inference keeps to them "
                "(test-time training's default; fine-tuning's is unmeasured)"})
    # --- LoRA ---
    use_lora: bool = field(default=True, metadata={"help": "train a LoRA adapter; false: all weights"})
    lora_r: int = field(default=32, metadata={"help": "LoRA rank"})
    lora_alpha: int | None = field(default=None, metadata={"help": "LoRA alpha; default: 2 × lora_r"})
    lora_dropout: float = field(default=0.0, metadata={"help": "dropout on the LoRA input"})
    use_rslora: bool = field(default=False, metadata={"help": "rank-stabilised LoRA scaling alpha/sqrt(r)"})
    lora_target_modules: list[str] = field(default_factory=lambda: list(LORA_TARGETS),
                                           metadata={"help": "module names that get an adapter"})
    lora_layers: int | None = field(default=None, metadata={
        "help": "adapters on the last this many decoder layers only (backward stops below them, so a "
                "step is faster); None, or a model with fewer layers: all layers"})
    # --- augmentation (A2; the task augmentations are the stage's own) ---
    problem_augmentation_probability: float = field(default=0.0, metadata={
        "help": "chance a sample transforms only its inputs or outputs (A2)"})

    def __post_init__(self) -> None:
        if self.samples_per_step % (self.per_device_train_batch_size * n_processes()):
            raise ValueError(f"samples_per_step {self.samples_per_step} must be a multiple of "
                             f"per_device_train_batch_size "
                             f"{self.per_device_train_batch_size} × {n_processes()} processes")
        if self.reduced_vocabulary and not self.use_lora:
            raise ValueError("reduced_vocabulary needs use_lora=True: full fine-tuning trains the lm_head it "
                             "would cut; set reduced_vocabulary=False")
        if self.max_steps < 1 or self.max_seq_len < 16:
            raise ValueError(f"max_steps {self.max_steps} and max_seq_len {self.max_seq_len} must be positive")
        unknown = set(self.report_to) - {"tensorboard", "wandb"}
        if unknown:
            raise ValueError(f"report_to has {sorted(unknown)}; choose among tensorboard, wandb")

    @property
    def gradient_accumulation_steps(self) -> int:
        return self.samples_per_step // (self.per_device_train_batch_size * n_processes())

    def problem_augmentation_config(self) -> ProblemAugmentationConfig:
        return ProblemAugmentationConfig(probability=self.problem_augmentation_probability)


@dataclass
class FineTuningConfig(TrainingOptions):
    """Fine-tuning on several datasets, each paired with a prompt version."""

    model_path: str = field(default="embedded", metadata={"help": "model folder, hub id or `embedded`"})
    adapter_path: str | None = field(default=None, metadata={"help": "LoRA adapter to continue training"})
    grid_encoder: str = field(default=DEFAULT_ENCODER, metadata={"help": "grid encoder string (R1)"})
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig, metadata={
        "help": "task augmentations of every sample (A1)"})
    lr_scheduler_type: str = field(default="linear", metadata={"help": "lr schedule", "choices": SCHEDULERS})
    warmup_ratio: float = field(default=0.05, metadata={"help": "share of steps spent warming up (0-1)"})

    train_datasets: list[tuple[str, str]] = field(
        default_factory=lambda: [("arc-agi-1/training", DEFAULT_PROMPT_VERSION)],
        metadata={"help": "pairs of (dataset name or path, prompt version)"})
    leave_one_out: bool = field(default=False, metadata={
        "help": "train on the leave-one-out forms of each task (every pair with a known output held out in turn, "
                "the others shown), as test-time training does, instead of the task as given"})
    val_dataset: tuple[str, str] | None = field(default=None, metadata={
        "help": "(dataset, prompt version) held out: its tasks are never trained on, its test inputs give the "
                "validation loss"})
    eval_steps: int = field(default=100, metadata={"help": "validate every this many steps"})
    save_steps: int = field(default=100, metadata={"help": "checkpoint every this many steps"})
    save_total_limit: int | None = field(default=3, metadata={"help": "checkpoints kept"})
    resume: bool = field(default=True, metadata={"help": "continue from the last checkpoint in output_dir"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio is {self.warmup_ratio}; it must be in [0, 1)")
        for _, prompt_version in [*self.train_datasets, *([self.val_dataset] if self.val_dataset else [])]:
            check_prompt_version(prompt_version)
        if not self.train_datasets:
            raise ValueError(f"train_datasets is empty; give pairs like (arc-agi-1/training, {PROMPT_VERSIONS[0]})")


def n_processes() -> int:
    """Processes training together: WORLD_SIZE as `accelerate launch` and torchrun set it, else 1."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Whether this process writes the run's files (rank 0, or the only process)."""
    return int(os.environ.get("RANK", "0")) == 0


# --- model ------------------------------------------------------------------------------

def prepare_model(options: TrainingOptions, device: str, model_path: str, adapter_path: str | None = None) -> Any:
    """The model to train: `model_path` with a new LoRA adapter or `adapter_path` continued, or the full model."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    from arc24_lib.models import load_model

    if adapter_path and not options.use_lora:
        raise ValueError("adapter_path needs use_lora=True (or merge the adapter first with merge_adapter)")
    dtype = torch.float32 if device == "cpu" else None
    model = load_model(model_path, device=device, dtype=dtype)
    if options.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    if not options.use_lora:
        return model
    if adapter_path:
        return PeftModel.from_pretrained(model, adapter_path, is_trainable=True)
    n_layers = model.config.num_hidden_layers
    if options.lora_layers is not None and options.lora_layers < 1:
        raise ValueError(f"lora_layers is {options.lora_layers}; give at least 1 (the model has {n_layers} "
                         "decoder layers), or None for all")
    # a model with fewer layers than lora_layers gets adapters on all of them
    layers = None if (options.lora_layers or n_layers) >= n_layers else list(range(n_layers - options.lora_layers,
                                                                                      n_layers))
    lora = LoraConfig(r=options.lora_r, lora_alpha=options.lora_alpha or 2 * options.lora_r,
                      lora_dropout=options.lora_dropout, target_modules=options.lora_target_modules,
                      layers_to_transform=layers, use_rslora=options.use_rslora, task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def training_arguments(options: TrainingOptions, output_dir: str | Path, device: str, **overrides: Any) -> Any:
    """TrainingArguments from our options (mixed precision on GPU, plain fp32 on CPU).

    Our options are not a TrainingArguments subclass (as TRL's SFTConfig is): that class has 112 fields (transformers
    5.19) whose defaults are the Trainer's, not a test-time run's, every flag and notebook parameter check would
    import transformers and torch to build it, and our effective batch (`samples_per_step`) is split over
    processes here, which its fields cannot say. The fields mapped below are the only ones we set; anything else
    stays the Trainer's default."""
    from transformers import TrainingArguments

    on_gpu = device.startswith("cuda")
    precision = resolve_precision(options.mixed_precision, device)
    values = dict(
        output_dir=str(output_dir), max_steps=options.max_steps,
        per_device_train_batch_size=options.per_device_train_batch_size,
        gradient_accumulation_steps=options.gradient_accumulation_steps,
        learning_rate=options.learning_rate, weight_decay=options.weight_decay,
        max_grad_norm=options.max_grad_norm, seed=options.random_seed, logging_steps=options.logging_steps,
        report_to=options.report_to or "none", use_cpu=not on_gpu, bf16=precision == "bf16", fp16=precision == "fp16",
        remove_unused_columns=False, dataloader_num_workers=0, save_strategy="no",
        # several processes: each reads the one sample stream and keeps its own share of every batch
        # (accelerate's IterableDatasetShard), as dispatching cannot concatenate batches of unequal length
        accelerator_config={"dispatch_batches": False}, ddp_find_unused_parameters=False,
    )
    values.update(overrides)
    return TrainingArguments(**values)


def resolve_precision(mixed_precision: str, device: str) -> str:
    """`auto` → bf16 where the device computes it natively, fp16 on older GPUs, else fp32; others unchanged."""
    from arc24_lib.models import gpu_has_bf16

    if mixed_precision != "auto":
        return mixed_precision
    on_gpu = device.startswith("cuda")
    if gpu_has_bf16(device) if on_gpu else cpu_has_bf16():
        return "bf16"
    return "fp16" if on_gpu else "fp32"


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively; autocast then runs a LoRA step ~1.7x faster (measured here)."""
    import torch

    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def make_trainer(model: Any, tokenizer: Any, args: Any, train_dataset: Any, eval_dataset: Any = None,
                 callbacks: list[Any] | None = None, lr_multiplier: Callable[[int], float] | None = None,
                 rows: Any = None) -> Any:
    """A transformers Trainer wired with our padding collator that computes logits only where a
    label is (same loss, less work); the tokenizer is saved with checkpoints. `lr_multiplier`
    (step -> share of the peak rate) replaces `args.lr_scheduler_type` when given. `rows`
    (vocabulary.KeptRows): the labels as rows of a cut vocabulary projection (train inside cut_head)."""
    from torch.optim.lr_scheduler import LambdaLR
    from transformers import Trainer

    from arc24_lib.samples import PadCollator, with_labelled_logits_only

    class LabelledLogitsTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = with_labelled_logits_only(inputs)
            if rows is not None:
                inputs["shift_labels"] = rows.rows(inputs["shift_labels"])
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

        def create_scheduler(self, num_training_steps, optimizer=None):
            if lr_multiplier is None or self.lr_scheduler is not None:
                return super().create_scheduler(num_training_steps, optimizer)
            self.lr_scheduler = LambdaLR(optimizer or self.optimizer, lr_multiplier)
            return self.lr_scheduler

    return LabelledLogitsTrainer(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                                 data_collator=PadCollator(tokenizer.pad_token_id), processing_class=tokenizer,
                                 callbacks=callbacks)


def kept_vocabulary(options: TrainingOptions, tokenizer: Any, encoder: Any,
                    prompt_versions: list[str]) -> tuple[int, ...] | None:
    """The token ids a reduced-vocabulary run keeps (every prompt version's under `encoder`, a GridEncoder),
    None for the full vocabulary."""
    if not options.reduced_vocabulary:
        return None
    from arc24_lib.vocabulary import answer_vocabulary

    return tuple(sorted({token for version in prompt_versions
                         for token in answer_vocabulary(tokenizer, encoder, version)}))


def answer_loss(model: Any, samples: list[dict[str, list[int]]], pad_token_id: int, batch_size: int = 4) -> float:
    """Mean cross-entropy per answer token over samples (the quantity training lowers)."""
    import torch

    from arc24_lib.samples import PadCollator

    collate, total, count = PadCollator(pad_token_id), 0.0, 0
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        for start in range(0, len(samples), batch_size):
            batch = {k: v.to(device) for k, v in collate(samples[start:start + batch_size]).items()}
            n_answer = int((batch["labels"][:, 1:] != -100).sum())  # labels are shifted inside the model
            total += float(model(**batch).loss) * n_answer
            count += n_answer
    return total / count


# --- fine-tuning ------------------------------------------------------------------------

def _last_checkpoint(output_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None


def training_forms(tasks: list[Task], leave_one_out: bool) -> list[Task]:
    """The tasks as trained on: in leave-one-out forms where asked (pool tasks stay as they are: each of
    their samples draws its own pairs)."""
    if not leave_one_out:
        return tasks
    return [form for task in tasks for form in ([task] if task.n_train else leave_one_out_known_pairs(task))]


def fine_tune(config: FineTuningConfig, callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Fine-tune as configured; writes checkpoints, the final model/adapter, config and a summary."""
    from transformers import set_seed

    from arc24_lib.data import get_dataset
    from arc24_lib.encoders import parse_encoder
    from arc24_lib.models import default_device, load_tokenizer
    from arc24_lib.samples import SampleSource, TrainingSamples, fixed_samples
    from arc24_lib.vocabulary import KeptRows, cut_head, save_vocabulary

    start = time.perf_counter()
    output_dir = Path(config.output_dir)
    if is_main_process():
        save_config(config, output_dir / "fine_tuning_config.json")
    set_seed(config.random_seed)
    device = config.device or default_device()
    encoder = parse_encoder(config.grid_encoder)
    tokenizer = load_tokenizer(config.model_path)
    val_tasks = get_dataset(config.val_dataset[0]) if config.val_dataset else Dataset("none", {})
    trained = {name: [task for task in get_dataset(name) if task.task_id not in val_tasks] for name, _ in
               config.train_datasets}  # the held-out tasks left out
    if is_main_process():  # the data list: what the model was trained on
        write_json_atomic({name: sorted(task.task_id for task in tasks) for name, tasks in trained.items()},
                          output_dir / TRAIN_TASKS_FILE, indent=1)
    sources = [SampleSource(training_forms(trained[name], config.leave_one_out), version)
               for name, version in config.train_datasets]
    samples = TrainingSamples(sources, encoder, tokenizer, config.max_seq_len, config.random_seed,
                              config.augmentation, config.problem_augmentation_config(),
                              label_shown_grids=config.label_shown_grids)
    eval_samples, eval_args = None, {}
    if config.val_dataset:
        version = config.val_dataset[1]
        eval_samples = fixed_samples(list(val_tasks), version, encoder, tokenizer, config.max_seq_len)
        eval_args = dict(eval_strategy="steps", eval_steps=config.eval_steps, per_device_eval_batch_size=1,
                         eval_on_start=True)  # the curve starts from the model before training
    # transformers 5 has no warmup_ratio: its warmup_steps reads a float below 1 as that share of max_steps
    args = training_arguments(config, output_dir, device, lr_scheduler_type=config.lr_scheduler_type,
                              warmup_steps=config.warmup_ratio, save_strategy="steps", save_steps=config.save_steps,
                              save_total_limit=config.save_total_limit, **eval_args)
    model = prepare_model(config, device, config.model_path, config.adapter_path)
    kept = kept_vocabulary(config, tokenizer, encoder, [version for _, version in config.train_datasets])
    rows = None if kept is None else KeptRows(kept, model.config.vocab_size, tokenizer)
    trainer = make_trainer(model, tokenizer, args, samples, eval_samples, callbacks, rows=rows)
    checkpoint = _last_checkpoint(output_dir) if config.resume else None
    if checkpoint:
        logger.info("resuming from %s", checkpoint)
    with cut_head(model, rows) if rows is not None else nullcontext():
        result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(str(output_dir))  # the Trainer writes from the main process only
    if kept is not None and is_main_process():
        save_vocabulary(kept, output_dir)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    summary = {"global_step": trainer.state.global_step, "resumed_from": checkpoint, "processes": n_processes(),
               "train_loss": result.training_loss, "last_logged_loss": losses[-1] if losses else None,
               "samples_made": samples.counts.made, "samples_trimmed": samples.counts.trimmed,
               "samples_skipped": samples.counts.skipped, "seconds": time.perf_counter() - start}
    if is_main_process():
        from arc24_lib.plotting import plot_training, save_figure

        tokenizer.save_pretrained(output_dir)
        write_json_atomic(summary, output_dir / "train_summary.json", indent=2)
        validation = read_records(output_dir / VALIDATION_FILE)
        save_figure(plot_training(trainer.state.log_history, validation), output_dir / PLOT_FILE)
    return summary


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: every FineTuningConfig field is a flag."""
    logging.basicConfig(level=os.environ.get("LOGLEVEL", "INFO"))
    print(json.dumps(fine_tune(parse_config(FineTuningConfig, argv)), indent=2))


if __name__ == "__main__":
    main()
