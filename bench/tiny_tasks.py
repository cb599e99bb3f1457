"""Solve rate on tiny tasks with the embedded model on this CPU, under a per-task time budget.

For each task, `solve.solve_task`: test-time fine-tuning on its train pairs (leave-one-out,
augmented), then AIRV inference with its adapter, augmented scoring and selection. A task is
solved when one of the two selected attempts is right for every test input. The budget covers
all stages. Prints one line per task and `solved K/N`, and writes the per-task results to
tiny_tasks.json. Every setting is a flag of `solve.SolveConfig` with the library's default
(`--test_time.random_seed 8`, `--inference.predictions_per_test_input 16`, `--budget_s 120`, ...);
`BENCH_DIFFERENCES` lists the bench's own. Any dataset and id list works.
Run: .venv/bin/python bench/tiny_tasks.py [--dataset arc-agi-1/training] [--task-ids ...] [--help]
"""

import argparse
import json
import time
from pathlib import Path

from arc24_lib.config import add_config_arguments, config_from_dict, flags_to_dict, merge_dicts
from arc24_lib.solve import FOLLOWS_TRAINING, SolveConfig

# Where the bench departs from the library's defaults, and why: it measures this machine's CPU
BENCH_DIFFERENCES = {"test_time": {"device": "cpu"}, "inference": {"device": "cpu"}}
BENCH_OWN = ("dataset", "task_ids", "n_tasks", "output_dir")  # the bench's own flags, not SolveConfig's
# set by --output-dir, or followed from test-time training by construction (solve.follow_training)
NOT_FLAGS = ("test_time.output_dir", "inference.output_dir", "inference.adapters_dir",
             *(f"inference.{name}" for name in FOLLOWS_TRAINING))


def bench_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--dataset", default="arc-agi-1/training")
    parser.add_argument("--task-ids", nargs="*", help="default: the --n-tasks smallest by cell count")
    parser.add_argument("--n-tasks", type=int, default=12)
    parser.add_argument("--output-dir", default=None)
    add_config_arguments(parser, SolveConfig, exclude=NOT_FLAGS)
    return parser


def bench_changes(flags: dict) -> dict:
    """The bench's differences and the SolveConfig flags given, as one nested dict of changes."""
    given = flags_to_dict({name: value for name, value in flags.items() if name not in BENCH_OWN})
    return merge_dicts(BENCH_DIFFERENCES, given)


def bench_config(flags: dict, output_dir: str) -> SolveConfig:
    """The library's SolveConfig with `bench_changes` applied, writing under `output_dir`."""
    return config_from_dict(SolveConfig, bench_changes(flags)).with_output_dir(output_dir)


def main() -> None:
    args = vars(bench_parser().parse_args())
    output_dir = args["output_dir"] or f"outputs/tiny_tasks/{time.strftime('%Y%m%d-%H%M%S')}"
    config = bench_config(args, output_dir)

    from arc24_lib.config import save_config
    from arc24_lib.data import get_dataset
    from arc24_lib.partitions import smallest_tasks, subset_by_ids
    from arc24_lib.solve import solve_task

    dataset = get_dataset(args["dataset"])
    tasks = subset_by_ids(dataset, args["task_ids"]) if args["task_ids"] else smallest_tasks(dataset, args["n_tasks"])
    save_config(config, Path(output_dir) / "solve_config.json")
    print(f"{len(tasks)} tasks of {args['dataset']}, budget {config.budget_s} s per task; settings: the library's, "
          f"with {json.dumps(bench_changes(args))}\n", flush=True)
    print("| task | solved | right among predictions | steps | stop | final loss | TTT s | inference s | total s |")
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    backend, results, pace = config.inference.build_backend(), [], config.first_pace()
    for task in tasks:  # one at a time, so each line prints as soon as its task is done
        result = solve_task(task, config, backend, pace=pace)
        results.append(result)
        Path(output_dir, "tiny_tasks.json").write_text(json.dumps(results, indent=2))  # kept as it goes
        loss = "-" if result["final_loss"] is None else f"{result['final_loss']:.3f}"
        print(f"| {result['task_id']} | {'yes' if result['solved'] else 'no'} | {result['pass_n']} | "
              f"{result['steps']} | {result['stop_reason'] or result['ttt']} | {loss} | {result['ttt_seconds']} | "
              f"{result['inference_seconds']} | {result['seconds']} |", flush=True)
    over = [r["task_id"] for r in results if config.budget_s and r["seconds"] > config.budget_s]
    worst = max((r["seconds"] - config.budget_s for r in results), default=0.0) if config.budget_s else 0.0
    print(f"\nsolved {sum(bool(r['solved']) for r in results)}/{len(results)}; worst overrun {worst:+.1f} s"
          + (f" (over budget: {', '.join(over)})" if over else ""))


if __name__ == "__main__":
    main()
