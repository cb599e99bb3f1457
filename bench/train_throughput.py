"""Fine-tuning throughput: our Trainer path vs a raw torch loop, same model, same samples.

Both train a fresh LoRA (r=32, all linear layers) on the embedded SmolLM2 with batch 1 over
the same real ARC samples of about the target length; the first step of each is a warm-up
and is not timed. Prints tokens/s of each and their ratio per length.
Run: .venv/bin/python bench/train_throughput.py [--lengths 512 2048] [--steps 6]
"""

import argparse
import time

import torch
from raw_loop import raw_loop_seconds


def samples_near(length: int, count: int, tokenizer) -> list[dict]:
    """Real ARC training samples (unaugmented) with length in [0.75, 1.0] × `length`, longest first."""
    from arc24_lib.data import load_builtin
    from arc24_lib.encoders import DEFAULT_ENCODER, parse_encoder
    from arc24_lib.prompting import create_prompt, tokenize_prompt

    encoder = parse_encoder(DEFAULT_ENCODER)
    found = []
    for task in load_builtin("arc-agi-1/training"):
        ids, labels = tokenize_prompt(tokenizer, create_prompt(task, encoder, "output-from-examples-v0", tokenizer))
        if 0.75 * length <= len(ids) <= length:
            found.append({"input_ids": ids, "labels": labels})
    if len(found) < count:
        raise SystemExit(f"only {len(found)} samples near {length} tokens")
    return sorted(found, key=lambda s: -len(s["input_ids"]))[:count]


class InOrder(torch.utils.data.IterableDataset):
    def __init__(self, samples):
        self.samples = samples

    def __iter__(self):
        return iter(self.samples)


def time_trainer(options, tokenizer, samples) -> float:
    """Seconds our fine-tuning path spends on steps 2..n."""
    from transformers import TrainerCallback

    from arc24_lib.training import make_trainer, prepare_model, training_arguments

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 1:
                self.start = time.perf_counter()

    clock = Clock()
    args = training_arguments(options, "outputs/bench_train_throughput", "cpu", disable_tqdm=True,
                              data_seed=0, seed=0)
    in_order = InOrder(samples)  # an iterable dataset: the Trainer takes the samples in the raw loop's order
    trainer = make_trainer(prepare_model(options, "cpu", "embedded"), tokenizer, args, in_order, callbacks=[clock])
    trainer.train()
    return time.perf_counter() - clock.start


def time_raw_loop(options, tokenizer, samples) -> float:
    """Seconds a plain forward/backward/AdamW loop spends on steps 2..n."""
    from arc24_lib.training import prepare_model

    return raw_loop_seconds(prepare_model(options, "cpu", "embedded"), samples, tokenizer.pad_token_id,
                            options.learning_rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", nargs="+", type=int, default=[512, 2048])
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()

    from arc24_lib.models import load_tokenizer
    from arc24_lib.training import TrainingOptions

    torch.manual_seed(0)
    tokenizer = load_tokenizer("embedded")
    options = TrainingOptions(max_steps=args.steps, samples_per_step=1, learning_rate=1e-4,
                              lora_r=32, logging_steps=1000, device="cpu", mixed_precision="fp32")
    print(f"SmolLM2-135M, LoRA r=32, batch 1, fp32 on CPU ({torch.get_num_threads()} threads), "
          f"{args.steps} steps of which the first is warm-up\n")
    print("| length | tokens/sample | ours tokens/s | raw torch tokens/s | ours / raw |")
    print("|---|---|---|---|---|")
    for length in args.lengths:
        samples = samples_near(length, args.steps, tokenizer)
        tokens = sum(len(s["input_ids"]) for s in samples[1:])  # both loops time the same steps 2..n
        raw = time_raw_loop(options, tokenizer, samples)
        ours = time_trainer(options, tokenizer, samples)
        print(f"| {length} | {tokens / (args.steps - 1):.0f} | {tokens / ours:.0f} | {tokens / raw:.0f} "
              f"| {raw / ours:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
