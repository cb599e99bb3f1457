"""Test-time step time by prompt version, LoRA placement and batch size, side by side on one real task.

Each setting trains a fresh LoRA (r=32) on the embedded SmolLM2, the shown grids
labelled and logits only where labels are, in the precision the test-time Trainer picks on
this machine; the samples are the task's augmented leave-one-out forms, the same for every
setting. Prints seconds per step (after warm-up), samples per second and the speed-up in samples
per second over the first setting (batch 1).
Run: .venv/bin/python bench/ttt_step_time.py [--task-id 0d3d703e] [--steps 8]
"""

import argparse
import itertools

import torch
from raw_loop import raw_loop_seconds


def seconds_per_step(options, task_format, samples, pad_token_id: int, warmup: int = 2, batch_size: int = 1) -> float:
    """Mean wall time of forward, backward and AdamW over the steps after the warm-up ones."""
    from arc24_lib.training import cpu_has_bf16, prepare_model

    dtype = torch.bfloat16 if cpu_has_bf16() else torch.float32
    seconds = raw_loop_seconds(prepare_model(options, "cpu", task_format.model_path), samples, pad_token_id,
                               options.learning_rate, warmup=warmup, dtype=dtype, labelled_logits_only=True,
                               batch_size=batch_size)
    return seconds / (len(samples) // batch_size - warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task-id", default="0d3d703e")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per setting (after 2 warm-up)")
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[4, 8],
                        help="also time v2 on 15 layers with these batch sizes")
    args = parser.parse_args()

    from arc24_lib.data import get_dataset
    from arc24_lib.models import load_tokenizer
    from arc24_lib.partitions import leave_one_out
    from arc24_lib.samples import SampleSource, TrainingSamples
    from arc24_lib.task_format import TaskFormat
    from arc24_lib.test_time import TestTimeConfig

    torch.manual_seed(0)
    task = get_dataset("arc-agi-1/training")[args.task_id]
    settings = [("output-from-examples-v0", None), ("output-from-examples-v2", None), ("output-from-examples-v0", 15),
                ("output-from-examples-v2", 15), ("output-from-examples-v2", 10)]
    settings = [(version, layers, 1) for version, layers in settings]
    settings += [("output-from-examples-v2", 15, size) for size in args.batch_sizes]
    print(f"task {args.task_id}, LoRA r=32, {torch.get_num_threads()} threads, {args.steps} timed steps\n")
    print("| prompt version | LoRA layers | batch | tokens/sample | s/step | samples/s | speed-up |")
    print("|---|---|---|---|---|---|---|")
    tokenizer = load_tokenizer("embedded")
    first = None
    for prompt_version, lora_layers, batch_size in settings:
        options = TestTimeConfig(lora_layers=lora_layers, device="cpu")
        task_format = TaskFormat(prompt_version=prompt_version)
        samples = TrainingSamples([SampleSource(leave_one_out(task), prompt_version)], task_format.encoder,
                                  tokenizer, 4096, seed=0, label_shown_grids=True)
        batch = list(itertools.islice(samples, (args.steps + 2) * batch_size))
        rate = batch_size / seconds_per_step(options, task_format, batch, tokenizer.pad_token_id, batch_size=batch_size)
        first = first or rate
        tokens = sum(len(s["input_ids"]) for s in batch) / len(batch)
        print(f"| {prompt_version} | {lora_layers or 'all 30'} | {batch_size} | {tokens:.0f} | {batch_size / rate:.3f} "
              f"| {rate:.2f} | {rate / first:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
