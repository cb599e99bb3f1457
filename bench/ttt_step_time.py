"""Test-time step time by prompt version and LoRA placement, side by side on one real task.

Each setting trains a fresh LoRA (r=32) on the embedded SmolLM2 with batch 1, the shown grids
labelled and logits only where labels are, in the precision the test-time Trainer picks on
this machine; the samples are the task's augmented leave-one-out forms, the same for every
setting. Prints seconds per step (after warm-up) and the speed-up over the first setting.
Run: .venv/bin/python bench/ttt_step_time.py [--task-id 0d3d703e] [--steps 8]
"""

import argparse
import itertools

import torch
from raw_loop import raw_loop_seconds


def seconds_per_step(options, samples, pad_token_id: int, warmup: int = 2) -> float:
    """Mean wall time of forward, backward and AdamW over the samples after the warm-up ones."""
    from arc24_lib.training import cpu_has_bf16, prepare_model

    dtype = torch.bfloat16 if cpu_has_bf16() else torch.float32
    seconds = raw_loop_seconds(prepare_model(options, "cpu"), samples, pad_token_id, options.learning_rate,
                               warmup=warmup, dtype=dtype, labelled_logits_only=True)
    return seconds / (len(samples) - warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task-id", default="0d3d703e")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per setting (after 2 warm-up)")
    args = parser.parse_args()

    from arc24_lib.data import get_dataset
    from arc24_lib.encoders import DEFAULT_ENCODER, parse_encoder
    from arc24_lib.models import load_tokenizer
    from arc24_lib.partitions import leave_one_out
    from arc24_lib.samples import SampleSource, TrainingSamples
    from arc24_lib.test_time import TestTimeConfig

    torch.manual_seed(0)
    task = get_dataset("arc-agi-1/training")[args.task_id]
    settings = [("output-from-examples-v0", None), ("output-from-examples-v2", None),
                ("output-from-examples-v0", 15), ("output-from-examples-v2", 15), ("output-from-examples-v2", 10)]
    print(f"task {args.task_id}, LoRA r=32, batch 1, {torch.get_num_threads()} threads, {args.steps} timed steps\n")
    print("| prompt version | LoRA layers | tokens/sample | s/step | speed-up |")
    print("|---|---|---|---|---|")
    tokenizer = load_tokenizer("embedded")
    first = None
    for prompt_version, lora_layers in settings:
        options = TestTimeConfig(prompt_version=prompt_version, lora_layers=lora_layers, device="cpu")
        samples = TrainingSamples([SampleSource(leave_one_out(task), prompt_version)], parse_encoder(DEFAULT_ENCODER),
                                  tokenizer, 4096, seed=0, label_shown_grids=True)
        batch = list(itertools.islice(samples, args.steps + 2))
        seconds = seconds_per_step(options, batch, tokenizer.pad_token_id)
        first = first or seconds
        tokens = sum(len(s["input_ids"]) for s in batch) / len(batch)
        layers = lora_layers or "all 30"
        print(f"| {prompt_version} | {layers} | {tokens:.0f} | {seconds:.3f} | {first / seconds:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
