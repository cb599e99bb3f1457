"""Solve rate on tiny tasks with the embedded model on this CPU, under a per-task time budget.

For each task, `solve.solve_task`: test-time fine-tuning on its train pairs (leave-one-out,
augmented), then AIRV inference with its adapter, augmented scoring and selection. A task is
solved when one of the two selected attempts is right for every test input. The budget covers
all stages. Every setting is a flag of `solve.SolveConfig` with the library's default
(`--test_time.random_seed`, `--inference.predictions_per_test_input`, `--budget_s`, ...);
`BENCH_DIFFERENCES` lists the bench's own. Any dataset and id list works.

`--arms` compares settings in one run: task by task, every arm in turn (each with its own
adapters and predictions), so a run cut short still compares them on the tasks it finished.
Prints one line per task and arm and a summary per arm; the results go to results.jsonl as they
come, and a rerun into the same --output-dir goes on where it stopped (an unfinished task is
timed again from the start).
Run: .venv/bin/python bench/tiny_tasks.py [--dataset arc-agi-1/training] [--task-ids ...]
     [--arms '{"raw": {}, "prior": {"task_format": {"adapter_path": "..."}}}'] [--help]
"""

import argparse
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

from arc24_lib.config import add_config_arguments, config_from_dict, flags_to_dict, merge_dicts
from arc24_lib.solve import SolveConfig, solve_task

# Where the bench departs from the library's defaults, and why: it measures this machine's CPU
BENCH_DIFFERENCES = {"test_time": {"device": "cpu"}, "inference": {"device": "cpu"}}
BENCH_OWN = ("dataset", "task_ids", "n_tasks", "output_dir")  # the bench's own flags, not SolveConfig's
# set by --output-dir (inference reads the adapters where test-time training writes them)
NOT_FLAGS = ("test_time.output_dir", "inference.output_dir", "inference.adapters_dir")


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


def bench_config(flags: dict, output_dir: str, arm: dict | None = None) -> SolveConfig:
    """The library's SolveConfig with `bench_changes` and then the `arm`'s changes applied, writing
    under `output_dir`."""
    return config_from_dict(SolveConfig, merge_dicts(bench_changes(flags), arm or {})).with_output_dir(output_dir)


def main() -> None:
    parser = bench_parser()
    parser.add_argument("--arms", type=json.loads, default={"": {}},
                        help="JSON: arm name -> SolveConfig changes (nested), applied after the flags")
    args = vars(parser.parse_args())
    arms = args.pop("arms")
    output_dir = Path(args["output_dir"] or f"outputs/tiny_tasks/{time.strftime('%Y%m%d-%H%M%S')}")
    configs = {arm: bench_config(args, str(output_dir / arm), changes) for arm, changes in arms.items()}

    from arc24_lib.config import save_config
    from arc24_lib.data import get_dataset, task_path
    from arc24_lib.files import JsonlWriter, read_records
    from arc24_lib.inference import BackendPool
    from arc24_lib.partitions import smallest_tasks, subset_by_ids

    dataset = get_dataset(args["dataset"])
    tasks = subset_by_ids(dataset, args["task_ids"]) if args["task_ids"] else smallest_tasks(dataset, args["n_tasks"])
    for arm, config in configs.items():
        save_config(config, output_dir / arm / "solve_config.json")
    print(f"{len(tasks)} tasks of {args['dataset']}; settings: the library's, with {json.dumps(bench_changes(args))}"
          + "".join(f"\n  arm {arm or '-'}: {json.dumps(changes)}, budget {configs[arm].budget_s} s per task"
                    for arm, changes in arms.items()) + "\n", flush=True)
    print("| task | arm | solved | right among predictions | steps | stop | final loss | TTT s | inference s "
          "| total s |")
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
    results_path = output_dir / "results.jsonl"
    done = {(r["arm"], r["task_id"]) for r in read_records(results_path)}
    backends, paces = BackendPool(), {arm: replace(config.pace) for arm, config in configs.items()}
    with JsonlWriter(results_path) as writer:
        for task in tasks:  # task by task, every arm: a run cut short still compares the arms
            for arm, config in configs.items():
                if (arm, task.task_id) in done:
                    continue
                for folder in (config.test_time and config.test_time.output_dir, config.inference.output_dir):
                    if folder:  # an unfinished task is timed again from the start
                        shutil.rmtree(task_path(folder, task.task_id), ignore_errors=True)
                backend = backends.get(config.inference, config.task_format.model_path)
                result = {"arm": arm, **solve_task(task, config, backend, pace=paces[arm])}
                writer.write([result])
                print(row(result), flush=True)
    print(summary(read_records(results_path), configs, tasks.task_ids))


def row(result: dict) -> str:
    """One task's line of the table."""
    loss = "-" if result["final_loss"] is None else f"{result['final_loss']:.3f}"
    return (f"| {result['task_id']} | {result['arm'] or '-'} | {'yes' if result['solved'] else 'no'} | "
            f"{result['pass_n']} | {result['steps']} | {result['stop_reason'] or result['ttt']} | {loss} | "
            f"{result['ttt_seconds']:.1f} | {result['inference_seconds']:.1f} | {result['seconds']:.1f} |")


def summary(results: list[dict], configs: dict[str, SolveConfig], task_ids: list[str]) -> str:
    """Per arm, on the tasks every arm finished: solved, right grid among the predictions, the worst
    overrun of the budget; and the tasks that only some arms solved."""
    by_arm = {arm: {r["task_id"]: r for r in results if r["arm"] == arm} for arm in configs}
    common = [t for t in task_ids if all(t in by_arm[arm] for arm in configs)]
    lines = [f"\n{len(common)} tasks finished by every arm"]
    for arm, config in configs.items():
        mine = [by_arm[arm][t] for t in common]
        worst = max((r["seconds"] - config.budget_s for r in mine), default=0.0) if config.budget_s else 0.0
        lines.append(f"{arm or '-'}: solved {sum(bool(r['solved']) for r in mine)}/{len(mine)}, right among "
                     f"predictions {sum(r['pass_n'] == 1.0 for r in mine)}/{len(mine)}; worst overrun {worst:+.1f} s; "
                     f"inference cut at the budget on {sum(bool(r.get('inference_cut')) for r in mine)}")
    split = [t for t in common if len({bool(by_arm[arm][t]["solved"]) for arm in configs}) > 1]
    lines += [f"  {t} solved by {', '.join(a or '-' for a in configs if by_arm[a][t]['solved'])}" for t in split]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
