"""AIRV inference throughput with the embedded model: one prompt at a time vs batched, and hf vs vllm.

Runs the real AIRV loop (N augmented predictions per test input, shape-held, reverted and parsed,
written to jsonl; augmented scoring off, so generation alone is timed) on the smallest real tasks,
first through the hf backend one prompt per generate call, then per batch size (its predictions
asserted identical), then (with `--backends hf vllm`) through the vllm backend on the same prompts;
prints predictions per second, the ratio to the one-at-a-time run and whether the predictions are
identical. `--generator dfs` times the depth-first search instead (every answer above min_prob per prompt;
a prediction is then one answer found). vllm needs .venv-vllm on CPU (`make bench-vllm`) or a GPU.
Run: .venv/bin/python bench/inference_throughput.py [--n-tasks 4] [--predictions 8] [--batch-sizes 8 16 32]
     [--generator dfs] [--adapter bench/results/arc_prior_2026-12-02/adapter]
     .venv-vllm/bin/python bench/inference_throughput.py --backends hf vllm
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
    parser.add_argument("--backends", nargs="+", choices=["hf", "vllm"], default=["hf"])
    parser.add_argument("--max-seq-len", type=int, default=4096)
    parser.add_argument("--generator", choices=["greedy", "dfs"], default="greedy")
    parser.add_argument("--adapter", default=None, help="a LoRA adapter folder for every prediction")
    parser.add_argument("--model", default="embedded", help="a model folder (bench/gpu_check_hf.py: random weights)")
    args = parser.parse_args()

    import torch

    from arc24_lib.data import get_dataset
    from arc24_lib.files import read_records
    from arc24_lib.inference.airv import InferenceConfig, run_airv
    from arc24_lib.inference.backend import GenerationConfig
    from arc24_lib.inference.hf import HFBackend
    from arc24_lib.partitions import smallest_tasks
    from arc24_lib.task_format import TaskFormat

    tasks = smallest_tasks(get_dataset(args.dataset), args.n_tasks)
    hidden = tasks.without_solutions()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    task_format = TaskFormat(adapter_path=args.adapter)

    def run(backend, batch_size: int) -> tuple[float, list[dict]]:
        with tempfile.TemporaryDirectory() as folder:
            config = InferenceConfig(output_dir=folder, predictions_per_test_input=args.predictions,
                                     prompts_per_call=batch_size, max_seq_len=args.max_seq_len, augmented_scoring=False,
                                     generator=args.generator)
            start = time.perf_counter()
            records = read_records(run_airv(hidden, config, task_format, backend=backend))
            return time.perf_counter() - start, records

    hf = HFBackend(args.model, device=device, prompts_per_call=1)
    hf.generate(["<|im_start|>user\nhi<|im_end|>\n"], GenerationConfig(max_new_tokens=4))  # warm-up
    single_seconds, single = run(hf, 1)
    tokens = sum(r["n_tokens"] for r in single)
    print(f"{len(tasks)} smallest tasks of {args.dataset}, {len(single)} AIRV predictions ({tokens} new tokens), "
          f"{args.generator}, shape-held, {device} ({torch.get_num_threads()} threads), each backend's default dtype\n")
    print("| backend | batch size | predictions/s | new tokens/s | vs hf one at a time | predictions identical |")
    print("|---|---|---|---|---|---|")
    print(f"| hf | 1 | {len(single) / single_seconds:.2f} | {tokens / single_seconds:.1f} | 1.00× | - |", flush=True)

    def report(name: str, batch_size: int, seconds: float, records: list[dict]) -> bool:
        """Print the row; whether every prediction equals the one-at-a-time run's."""
        same = sum((a["text"], a["grid"]) == (b["text"], b["grid"]) for a, b in zip(records, single, strict=True))
        identical = same == len(single)
        print(f"| {name} | {batch_size} | {len(records) / seconds:.2f} | {tokens / seconds:.1f} | "
              f"{single_seconds / seconds:.2f}× | {'yes' if identical else f'NO ({same}/{len(single)})'} |",
              flush=True)
        return identical

    if "hf" in args.backends:
        for batch_size in args.batch_sizes:
            hf.prompts_per_call = batch_size
            identical = report("hf", batch_size, *run(hf, batch_size))
            # float32 on the CPU pads without changing a token; a GPU's bf16 kernels may round differently
            assert identical or device != "cpu", f"batch size {batch_size} changed the predictions"
    if "vllm" in args.backends:
        from arc24_lib.inference.vllm import VLLMBackend

        del hf
        start = time.perf_counter()
        backend = VLLMBackend(args.model, max_model_len=args.max_seq_len)
        startup = time.perf_counter() - start
        backend.generate(["<|im_start|>user\nhi<|im_end|>\n"], GenerationConfig(max_new_tokens=4))  # warm-up
        batch_size = max(args.batch_sizes)  # prompts per generate call; the engine schedules them itself
        report("vllm", batch_size, *run(backend, batch_size))
        print(f"\nvllm engine start: {startup:.0f} s (not counted above)")
        backend.close()


if __name__ == "__main__":
    main()
