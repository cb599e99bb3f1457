"""`make demo`: the project's main job on real ARC data with the embedded model.

Today it covers the data stages (load, pick the smallest tasks, augment, prompt, count
tokens, draw pictures); test-time fine-tuning, inference and the submission join it as
their issues land.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="arc24 demo on the smallest real ARC tasks")
    parser.add_argument("--dataset", default="arc-agi-1/training")
    parser.add_argument("--n-tasks", type=int, default=6)
    parser.add_argument("--output-dir", default="outputs/demo")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from arc24_lib.augmentation import AugmentationConfig, augment_task, sample_augmentation
    from arc24_lib.data import get_dataset
    from arc24_lib.encoders import DEFAULT_ENCODER, parse_encoder
    from arc24_lib.models import load_tokenizer
    from arc24_lib.partitions import smallest_tasks
    from arc24_lib.plotting import plot_task, save_figure
    from arc24_lib.prompting import count_tokens, create_prompt, parse_answer

    output_dir = Path(args.output_dir)
    tasks = smallest_tasks(get_dataset(args.dataset), args.n_tasks)
    tokenizer = load_tokenizer("embedded")
    encoder = parse_encoder(DEFAULT_ENCODER)
    rng = np.random.default_rng(0)
    print(f"{len(tasks)} smallest tasks of {args.dataset}, encoder {encoder!r}\n")
    print("| task | train pairs | cells | prompt tokens | augmented as | round trip |")
    print("|---|---|---|---|---|---|")
    for task in tasks:
        augmentation = sample_augmentation(task, rng, AugmentationConfig())
        augmented = augment_task(task, augmentation)
        prompt = create_prompt(augmented, encoder, "output-from-examples-v0", tokenizer)
        parsed = parse_answer(prompt.answer, encoder, (tokenizer.eos_token,))
        ok = parsed is not None and np.array_equal(parsed, augmented.test[0].output)
        save_figure(plot_task(task), output_dir / f"{task.task_id}.png")
        save_figure(plot_task(augmented), output_dir / f"{task.task_id}_augmented.png")
        print(f"| {task.task_id} | {len(task.train)} | {task.n_cells} | {count_tokens(tokenizer, prompt)} "
              f"| {augmentation} | {'ok' if ok else 'FAILED'} |")
    print(f"\npictures of each task and of one augmentation: {output_dir.resolve()}")
    print("Not yet in the demo: test-time fine-tuning, AIRV inference, voting and submission.json "
          "(issues 3-5).")


if __name__ == "__main__":
    main()
