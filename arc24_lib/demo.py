"""`make demo`: the main job on real ARC data with the embedded SmolLM2, through the notebooks.

Runs 01_data → 03_test_time_fine_tuning → 04_inference → 05_evaluation with papermill on the
smallest ARC-AGI-1 training tasks (test-time fine-tuning per task, augmented inference,
voting), then prints where submission.json, the report and its pictures are, and the solved
count. The executed notebooks are saved beside the outputs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="arc-agi-1/training")
    parser.add_argument("--n-tasks", type=int, default=5, help="the smallest tasks of the dataset")
    parser.add_argument("--time-budget-s", type=float, default=120.0, help="test-time training per task")
    parser.add_argument("--max-steps", type=int, default=1000, help="the time budget ends a task first")
    parser.add_argument("--predictions", type=int, default=8, help="AIRV predictions per test input")
    parser.add_argument("--output-dir", default="outputs/demo")
    args = parser.parse_args(argv)

    from arc24_lib.notebooks import run_notebook

    start = time.perf_counter()
    output_dir = Path(args.output_dir).resolve()
    executed = output_dir / "executed_notebooks"
    common = {"output_dir": str(output_dir)}
    steps = [
        ("01_data", {"dataset": args.dataset, "n_tasks": args.n_tasks}),
        ("03_test_time_fine_tuning", {"max_steps": args.max_steps, "time_budget_s": args.time_budget_s}),
        ("04_inference", {"predictions_per_test_input": args.predictions}),
        ("05_evaluation", {}),
    ]
    for name, parameters in steps:
        print(f"\n=== {name} ({time.perf_counter() - start:.0f} s so far)", flush=True)
        run_notebook(name, {**common, **parameters}, executed)

    metrics = json.loads((output_dir / "05_evaluation" / "metrics.json").read_text())
    solved = [task_id for task_id, values in metrics["per_task"].items() if values["vote_2"] == 1.0]
    print(f"\nDone in {(time.perf_counter() - start) / 60:.1f} min.")
    print(f"submission.json:     {output_dir / '04_inference' / 'submission.json'}")
    print(f"metrics report:      {output_dir / '05_evaluation' / 'report.md'}")
    print(f"pictures:            {output_dir / '05_evaluation' / 'pictures'}")
    print(f"executed notebooks:  {executed}")
    print(f"solved {len(solved)}/{metrics['n_tasks']} tasks (one of two voted attempts right): "
          f"{', '.join(solved) or 'none'}")


if __name__ == "__main__":
    main()
