"""Solve rate on tiny tasks with the embedded model on this CPU, under a per-task time budget.

For each task: test-time fine-tuning on its train pairs (leave-one-out, augmented), then AIRV
inference with its adapter and selection (augmented scoring, or voting). With
--own-frame-share 0.25, two experts do this in turn: one trained in the task's own frame only
(a quarter of the time), then one over all frames (the rest); the second attempt is the
own-frame expert's best grid where it holds 3 in 4 of its votes. A task is solved when one of
the two selected attempts is right for every test input. The budget covers all stages.
Prints one line per task (steps, stop reasons and losses per expert) and `solved K/N`. Any
dataset and id list works.
Run: .venv/bin/python bench/tiny_tasks.py [--dataset arc-agi-1/training] [--task-ids ...] [--budget-s 240]
"""

import argparse
import json
import time
from pathlib import Path

from arc24_lib.experts import DEFAULT_OWN_FRAME_SHARE

DEFAULT_ENCODER = "GridShapeEncoder(RowNumberEncoder(MinimalGridEncoder()))"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="arc-agi-1/training")
    parser.add_argument("--task-ids", nargs="*", help="default: the --n-tasks smallest by cell count")
    parser.add_argument("--n-tasks", type=int, default=12)
    parser.add_argument("--budget-s", type=float, default=240.0, help="per task, training + inference")
    parser.add_argument("--inference-reserve-s", type=float, default=20.0,
                        help="per test input: kept from training for AIRV and scoring")
    parser.add_argument("--max-steps", type=int, default=1000, help="the time budget ends a task first")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--lr-scheduler-type", default="constant")
    parser.add_argument("--decay-over-budget", action=argparse.BooleanOptionalAction, default=True,
                        help="cosine learning-rate decay over the task's time budget")
    parser.add_argument("--batch-size", type=int, default=1, help="samples per optimizer step, in one forward pass")
    parser.add_argument("--lora-r", type=int, default=32)
    parser.add_argument("--lora-layers", type=int, default=15, help="adapters on the last N layers only (of 30)")
    parser.add_argument("--early-stop-loss", type=float, default=None,
                        help="stop a task below this training loss; default: train to the budget")
    parser.add_argument("--early-stop-window", type=int, default=1, help="logged losses averaged for early stopping")
    parser.add_argument("--predictions", type=int, default=8, help="AIRV predictions per test input")
    parser.add_argument("--prompt-version", default="output-from-examples-v2")
    parser.add_argument("--grid-encoder", default=DEFAULT_ENCODER)
    parser.add_argument("--permute-colors", action=argparse.BooleanOptionalAction, default=True,
                        help="colour permutations in training and inference")
    parser.add_argument("--keep-rule-colors", action=argparse.BooleanOptionalAction, default=True,
                        help="the rule's own colours (in every output and no input, or a fixed recolouring's) stay put")
    parser.add_argument("--geometric-augmentation", action=argparse.BooleanOptionalAction, default=True,
                        help="rotations and flips in training and inference")
    parser.add_argument("--geometries", default="all", help="all, flips (rows stay rows), diagonal-flips, identity")
    parser.add_argument("--one-kind-augmentation", action=argparse.BooleanOptionalAction, default=False,
                        help="each sample and prediction gets a new geometry or new colours, not both")
    parser.add_argument("--own-frame-probability", type=float, default=0.5,
                        help="chance a training sample keeps the task's own frame (colours still permuted)")
    parser.add_argument("--own-frame-share", type=float, default=DEFAULT_OWN_FRAME_SHARE,
                        help="share of the training time for a second expert trained in each task's own frame "
                             "(0: none); its sure grids take the second attempt")
    parser.add_argument("--label-shown-grids", action=argparse.BooleanOptionalAction, default=True,
                        help="loss on the train outputs in the prompt too")
    parser.add_argument("--augmented-scoring", action=argparse.BooleanOptionalAction, default=True,
                        help="rank candidates by their log-probability under all augmented prompts, not votes")
    parser.add_argument("--hold-shape", action=argparse.BooleanOptionalAction, default=True,
                        help="hold each answer's rows to the shape its header declares")
    parser.add_argument("--seed", type=int, default=7,
                        help="test-time training seed (LoRA init, augmentations); runs vary by about a task")
    parser.add_argument("--mixed-precision", default="auto", choices=("auto", "bf16", "fp32"))
    parser.add_argument("--output-dir", default=None)
    args = parser.parse_args()

    from arc24_lib.data import get_dataset
    from arc24_lib.inference.airv import InferenceConfig
    from arc24_lib.partitions import smallest_tasks, subset_by_ids
    from arc24_lib.pipeline import solve_tasks
    from arc24_lib.test_time import TestTimeConfig

    dataset = get_dataset(args.dataset)
    tasks = subset_by_ids(dataset, args.task_ids) if args.task_ids else smallest_tasks(dataset, args.n_tasks)
    output_dir = args.output_dir or f"outputs/tiny_tasks/{time.strftime('%Y%m%d-%H%M%S')}"
    ttt = TestTimeConfig(output_dir=f"{output_dir}/adapters", max_steps=args.max_steps, device="cpu",
                         learning_rate=args.learning_rate, batch_size=args.batch_size,
                         per_device_train_batch_size=args.batch_size, lr_scheduler_type=args.lr_scheduler_type,
                         decay_over_budget=args.decay_over_budget, lora_r=args.lora_r, lora_layers=args.lora_layers,
                         early_stop_loss=args.early_stop_loss,
                         early_stop_window=args.early_stop_window, max_seq_len=4096,
                         prompt_version=args.prompt_version, grid_encoder=args.grid_encoder,
                         mixed_precision=args.mixed_precision, permute_colors=args.permute_colors,
                         geometric_augmentation=args.geometric_augmentation,
                         one_kind_augmentation=args.one_kind_augmentation, geometries=args.geometries,
                         label_shown_grids=args.label_shown_grids, random_seed=args.seed,
                         keep_rule_colors=args.keep_rule_colors, own_frame_probability=args.own_frame_probability)
    inference = InferenceConfig(output_dir=f"{output_dir}/inference", predictions_per_test_input=args.predictions,
                                prompt_version=args.prompt_version, grid_encoder=args.grid_encoder, device="cpu",
                                max_seq_len=4096, permute_colors=args.permute_colors,
                                geometric_augmentation=args.geometric_augmentation,
                                one_kind_augmentation=args.one_kind_augmentation, geometries=args.geometries,
                                augmented_scoring=args.augmented_scoring, hold_shape=args.hold_shape,
                                keep_rule_colors=args.keep_rule_colors)
    print(f"{len(tasks)} tasks of {args.dataset}, budget {args.budget_s:.0f} s per task; settings: "
          f"{json.dumps({k: v for k, v in vars(args).items() if k not in ('task_ids', 'dataset')})}\n", flush=True)
    print("| task | solved | solved alone by | right among predictions | steps | stop | final loss | TTT s | "
          "inference s | total s |")
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
    results = []
    for task in tasks:  # one at a time, so each line prints as soon as its task is done
        result = solve_tasks(subset_by_ids(tasks, [task.task_id]), ttt, inference, budget_s=args.budget_s,
                             inference_reserve_s=args.inference_reserve_s,
                             own_frame_share=args.own_frame_share)[0]
        results.append(result)
        experts = result["experts"].values()
        losses = ["-" if e["final_loss"] is None else f"{e['final_loss']:.3f}" for e in experts]
        alone = ", ".join(name for name, e in result["experts"].items() if e.get("solved")) or "-"
        print(f"| {result['task_id']} | {'yes' if result['solved'] else 'no'} | {alone} | {result['pass_n']} | "
              f"{' + '.join(str(e['steps']) for e in experts)} | "
              f"{' + '.join(e['stop_reason'] or e['ttt_status'] for e in experts)} | {' + '.join(losses)} | "
              f"{result['ttt_seconds']} | {result['inference_seconds']} | {result['seconds']} |", flush=True)
    over = [r["task_id"] for r in results if r["seconds"] > args.budget_s]
    print(f"\nsolved {sum(bool(r['solved']) for r in results)}/{len(results)}"
          + (f" (over budget: {', '.join(over)})" if over else ""))
    Path(output_dir, "tiny_tasks.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
