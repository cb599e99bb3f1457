"""Test-time steps with the frozen layers' output kept against computed, through the library's Trainer.

The first test-time samples of the smallest training tasks (test-time defaults: LoRA on the last `lora_layers`
layers, reduced vocabulary, batch 1) go through the Trainer twice in a row. Arm `whole` runs every step through
all layers; `whole, full vocabulary` too, without the reduced vocabulary (the test-time default before issue
37); arm `kept` gives each sample its `sample_index`, as a pool of distinct samples does
(`distinct_samples`), so its second pass runs the adapted layers alone. All are timed on the second pass (the
same samples, in the same order), the arms in turn over `--repeats` runs.
Run: .venv/bin/python bench/ttt_frozen_layers.py [--n-tasks 12] [--samples-per-task 2] [--json out.json]
"""

import argparse
import itertools
import json
import statistics
import tempfile

import torch
from ttt_roofline import trainer_step_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-tasks", type=int, default=12, help="the smallest training tasks by cell count")
    parser.add_argument("--samples-per-task", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="runs per arm, arms in turn")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()

    from arc24_lib.data import load_builtin
    from arc24_lib.models import load_tokenizer
    from arc24_lib.partitions import smallest_tasks
    from arc24_lib.test_time import TestTimeConfig, task_samples
    from arc24_lib.training import kept_vocabulary, prepare_model
    from arc24_lib.vocabulary import KeptRows

    torch.manual_seed(0)
    config = TestTimeConfig(device="cpu", distinct_samples=None)  # the bench makes the pool itself
    tokenizer = load_tokenizer(config.model_path)
    chosen = list(smallest_tasks(load_builtin("arc-agi-1/training"), args.n_tasks))
    pool = [sample for task in chosen
            for sample in itertools.islice(iter(task_samples([task], config, tokenizer)), args.samples_per_task)]
    indexed = [{**sample, "sample_index": index} for index, sample in enumerate(pool)]
    rows = KeptRows(kept_vocabulary(config, tokenizer, [config.prompt_version]), len(tokenizer), tokenizer)
    arms = {"whole, full vocabulary": (pool + pool, None), "whole": (pool + pool, rows),
            "kept": (indexed + indexed, rows)}
    seconds = {arm: [] for arm in arms}
    for _ in range(args.repeats):
        for arm, (samples, arm_rows) in arms.items():
            with tempfile.TemporaryDirectory() as folder:
                seconds[arm].append(trainer_step_seconds(prepare_model(config, "cpu"), tokenizer, samples, config,
                                                         len(pool) + 1, folder, arm_rows))
    full, whole, kept = (statistics.mean(seconds[arm]) for arm in arms)
    tokens = statistics.mean(len(sample["input_ids"]) for sample in pool)
    print(f"{len(pool)} samples of the {args.n_tasks} smallest training tasks ({tokens:.0f} tokens on average), "
          f"LoRA on the last {config.lora_layers} layers, reduced vocabulary, {torch.get_num_threads()} threads")
    print("| arm | Trainer s/step | steps/s |\n|---|---|---|")
    for arm in arms:
        value = statistics.mean(seconds[arm])
        print(f"| {arm} | {value:.3f} | {1 / value:.2f} |")
    for label, base, over in (("kept/whole", whole, "whole"), ("kept/whole full vocabulary", full,
                                                                 "whole, full vocabulary")):
        print(f"{label}: {base / kept:.2f}x (per run: "
              + ", ".join(f"{w / k:.2f}x" for w, k in zip(seconds[over], seconds["kept"], strict=True)) + ")")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"task_ids": [task.task_id for task in chosen], "tokens": tokens, "seconds": seconds}, out,
                      indent=2)


if __name__ == "__main__":
    main()
