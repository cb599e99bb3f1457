"""Candidate generators side by side (issue 22): greedy AIRV, depth-first search and sampling, each followed
by the same augmented scoring and selection, with the same test-time adapters.

Each dev task's adapter is trained once (today's test-time training, the share of the 4-minute budget a
tiny task's training gets) and reused by every arm, task by task. Per arm and task: the share of test inputs whose right
grid is among the candidates, whether the task is solved with two attempts, the distinct candidates and the
inference seconds (AIRV and scoring) per test input. The arms' prompt counts are set so that their inference
times are comparable; the table prints each arm's time as a ratio to greedy's, and each arm's slowest pace in
seconds per planned answer token (what `solve` reserves for inference; `airv.GENERATOR_COST` is dfs's and
sampling's worst pace over greedy's). Results go to
`results.jsonl` as each task completes, and a rerun goes on where it stopped.
Run: .venv/bin/python bench/candidates.py [--n-tasks 24] [--arms '{"dfs4": {"generator": "dfs", ...}}']
     .venv/bin/python bench/candidates.py --report   # the table of the results so far
"""

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

# Each arm: InferenceConfig fields that differ from the library's defaults (greedy AIRV, 8 prompts per test input)
ARMS: dict[str, dict[str, Any]] = {
    "greedy": {},
    "greedy16": {"predictions_per_test_input": 16},  # greedy given about the search's time
    "dfs": {"generator": "dfs"},  # the same 8 augmented prompts, every answer above min_prob
    "dfs6": {"generator": "dfs", "predictions_per_test_input": 6},  # the search in about greedy's time
    "sampling": {"generator": "sampling", "temperature": 1.0},
}
TRAIN_S = 220.0  # the training share of a tiny task under the 240 s budget (solve.SolveConfig's first estimate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--dataset", default="arc-agi-1/training")
    parser.add_argument("--n-tasks", type=int, default=24, help="the smallest tasks by cell count")
    parser.add_argument("--from-rank", type=int, default=0, help="skip this many of the smallest first")
    parser.add_argument("--arms", type=json.loads, default=ARMS, help="JSON: arm name -> InferenceConfig changes")
    parser.add_argument("--train-s", type=float, default=TRAIN_S, help="test-time training per task, seconds")
    parser.add_argument("--output-dir", default="outputs/candidates")
    parser.add_argument("--report", action="store_true", help="print the table of the results so far and stop")
    args = parser.parse_args()

    from arc24_lib.config import config_from_dict
    from arc24_lib.data import Dataset, get_dataset
    from arc24_lib.files import JsonlWriter, read_records
    from arc24_lib.inference import BackendPool
    from arc24_lib.inference.airv import InferenceConfig, run_airv
    from arc24_lib.inference.records import PREDICTIONS_FILE
    from arc24_lib.inference.scoring import score_predictions
    from arc24_lib.models import load_tokenizer
    from arc24_lib.partitions import smallest_tasks, subset_by_ids
    from arc24_lib.solve import planned_answer_tokens, task_metrics
    from arc24_lib.task_format import TaskFormat
    from arc24_lib.test_time import TestTimeConfig, fine_tune_at_test_time

    output_dir = Path(args.output_dir)
    ranked = smallest_tasks(get_dataset(args.dataset), args.from_rank + args.n_tasks)
    tasks = subset_by_ids(ranked, ranked.task_ids[args.from_rank:])
    test_time = TestTimeConfig(output_dir=str(output_dir / "adapters"), time_budget_s=args.train_s, device="cpu")
    task_format = TaskFormat()  # both stages'
    results_path = output_dir / "results.jsonl"
    tokenizer = load_tokenizer(task_format.model_path)
    planned = {arm: {task.task_id: planned_answer_tokens(task, config_from_dict(InferenceConfig, changes), task_format,
                                                         tokenizer) for task in tasks}
               for arm, changes in args.arms.items()}
    if args.report:
        print(table(read_records(results_path), list(args.arms), tasks.task_ids, planned))
        return
    done = {(r["arm"], r["task_id"]) for r in read_records(results_path)}
    backends = BackendPool()  # arms that change the backend's own settings get their own
    with JsonlWriter(results_path) as writer:
        for task in tasks:  # task by task, every arm: a run cut short still compares the arms
            if all((arm, task.task_id) in done for arm in args.arms):
                continue
            one = Dataset(task.task_id, {task.task_id: task})
            # once; a rerun keeps it
            trained = fine_tune_at_test_time(one.without_solutions(), test_time, task_format)[0]
            for arm, changes in args.arms.items():
                if (arm, task.task_id) in done:
                    continue
                folder = output_dir / arm / task.task_id
                shutil.rmtree(folder, ignore_errors=True)  # an unfinished task is timed again from the start
                config = config_from_dict(InferenceConfig, {**changes, "device": "cpu", "output_dir": str(folder),
                                                            "adapters_dir": test_time.output_dir})
                backend = backends.get(config, task_format.model_path)
                started = time.perf_counter()
                run_airv(one.without_solutions(), config, task_format, backend=backend)
                generated = time.perf_counter()
                score_predictions(one.without_solutions(), config, task_format, backend)
                scored = time.perf_counter()
                records = read_records(folder / PREDICTIONS_FILE)
                candidates = [len({json.dumps(r["grid"]) for r in records if r["test_index"] == i and r["grid"]})
                              for i in range(len(task.test))]
                result = {"arm": arm, "task_id": task.task_id, "test_inputs": len(task.test),
                          "seconds": round(scored - started, 1), "airv_seconds": round(generated - started, 2),
                          "scoring_seconds": round(scored - generated, 2), "candidates": candidates,
                          "ttt_steps": trained.get("steps", 0),
                          **task_metrics(task, folder / PREDICTIONS_FILE)}
                writer.write([result])
                print(json.dumps(result), flush=True)
    print(table(read_records(results_path), list(args.arms), tasks.task_ids, planned))


def table(results: list[dict[str, Any]], arms: list[str], task_ids: list[str],
          planned: dict[str, dict[str, int]]) -> str:
    """One row per arm over the tasks every arm has finished; `planned`: answer tokens per arm and task."""
    by_arm = {arm: {r["task_id"]: r for r in results if r["arm"] == arm} for arm in arms}
    common = [t for t in task_ids if all(t in by_arm[arm] for arm in arms)]
    inputs = sum(by_arm[arms[0]][t]["test_inputs"] for t in common) if common else 0
    base = sum(by_arm[arms[0]][t]["seconds"] for t in common) or 1.0
    lines = [f"{len(common)} tasks, {inputs} test inputs finished by every arm",
             "| arm | right grid among candidates | solved | candidates per test input | s per test input | "
             f"time vs {arms[0]} | slowest s per planned token |", "|---|---|---|---|---|---|---|"]
    for arm in arms:
        rows = [by_arm[arm][t] for t in common]
        right = sum(r["pass_n"] * r["test_inputs"] for r in rows)
        seconds = sum(r["seconds"] for r in rows)
        lines.append(f"| {arm} | {right:.0f}/{inputs} | {sum(bool(r['solved']) for r in rows)}/{len(rows)} | "
                     f"{sum(sum(r['candidates']) for r in rows) / max(inputs, 1):.1f} | "
                     f"{seconds / max(inputs, 1):.1f} | {seconds / base:.2f} | "
                     f"{max((r['seconds'] / planned[arm][r['task_id']] for r in rows), default=0.0):.4f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
