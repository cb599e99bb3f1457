"""AIRV inference throughput with the embedded model: batched vs one prompt at a time.

Runs the real AIRV loop (N augmented predictions per test input, reverted and parsed, written
to jsonl) on the smallest real tasks through the Hugging Face backend, once with one prompt
per generate call and once per batch size; asserts the predictions are identical and prints
predictions per second and the speed-up.
Run: .venv/bin/python bench/inference_throughput.py [--n-tasks 4] [--predictions 8] [--batch-sizes 8 16 32]
"""

import argparse
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="arc-agi-1/training")
    parser.add_argument("--n-tasks", type=int, default=4)
    parser.add_argument("--predictions", type=int, default=8)
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[8, 16, 32])
    args = parser.parse_args()

    import torch

    from arc24_lib.data import Dataset, get_dataset
    from arc24_lib.inference.airv import InferenceConfig, read_predictions, run_airv
    from arc24_lib.inference.hf import HFBackend
    from arc24_lib.partitions import smallest_tasks

    tasks = smallest_tasks(get_dataset(args.dataset), args.n_tasks)
    hidden = Dataset(tasks.name, {t.task_id: t.without_solutions() for t in tasks})
    backend = HFBackend("embedded", device="cpu")

    def run(batch_size: int) -> tuple[float, list[dict]]:
        backend.batch_size = batch_size
        with tempfile.TemporaryDirectory() as folder:
            config = InferenceConfig(output_dir=folder, predictions_per_test_input=args.predictions,
                                     batch_size=batch_size, device="cpu")
            start = time.perf_counter()
            records = read_predictions(run_airv(hidden, config, backend=backend))
            return time.perf_counter() - start, records

    from arc24_lib.inference.backend import GenerationConfig

    backend.generate(["<|im_start|>user\nhi<|im_end|>\n"], GenerationConfig(max_new_tokens=4))  # warm-up
    single_seconds, single = run(1)
    tokens = sum(r["n_tokens"] for r in single)
    print(f"{len(tasks)} smallest tasks of {args.dataset}, {len(single)} AIRV predictions ({tokens} new tokens), "
          f"greedy, fp32 on CPU ({torch.get_num_threads()} threads)\n")
    print("| batch size | predictions/s | new tokens/s | speed-up | predictions identical |")
    print("|---|---|---|---|---|")
    print(f"| 1 | {len(single) / single_seconds:.2f} | {tokens / single_seconds:.1f} | 1.00× | - |", flush=True)
    for batch_size in args.batch_sizes:
        seconds, records = run(batch_size)
        identical = [(r["text"], r["grid"]) for r in records] == [(r["text"], r["grid"]) for r in single]
        print(f"| {batch_size} | {len(records) / seconds:.2f} | {tokens / seconds:.1f} | "
              f"{single_seconds / seconds:.2f}× | {'yes' if identical else 'NO'} |", flush=True)
        assert identical, f"batch size {batch_size} changed the predictions"


if __name__ == "__main__":
    main()
