# %% [markdown]
# # 03 · Test-time fine-tuning
#
# Train one LoRA adapter per task on its own train pairs: each train pair in turn is the
# target and the others are the examples (leave-one-out), freshly augmented every step.
# Adapters go to `<output_dir>/03_test_time_fine_tuning/<task_id>`; finished tasks are kept
# on a rerun. With `own_frame_share` > 0, a second adapter per task is trained first in the
# task's own frame only (no rotations or flips) for that share of the time, into `own_frame/`.

# %% tags=["parameters"]
tasks_path = None  # None: the tasks 01_data wrote
model_path = "embedded"
adapter_path = None
grid_encoder = "GridShapeEncoder(RowNumberEncoder(MinimalGridEncoder()))"
prompt_version = "output-from-examples-v2"  # 04 must use the same
max_seq_len = 4096
max_steps = 300
learning_rate = 1e-3
lora_r = 32
lora_layers = 15  # SmolLM2-135M has 30; None: every layer
label_shown_grids = True
one_kind_augmentation = False  # True: a new geometry or new colours per sample, not both; 04 must agree
keep_rule_colors = True  # the rule's own colours (in every output, no input; a fixed recolouring's) stay; 04 must agree
own_frame_probability = 0.5  # share of samples left in the task's own frame (colours still permuted)
own_frame_share = 0.0  # e.g. 0.25: that share of time_budget_s for an own-frame adapter per task
time_budget_s = 150.0
decay_over_budget = True
early_stop_loss = None  # e.g. 0.01 to end easy tasks sooner
output_dir = "outputs/notebooks"

# %%
from pathlib import Path

import matplotlib.pyplot as plt

from arc24_lib.data import load_dataset
from arc24_lib.notebooks import TestTimeParameters, notebook_parameters
from arc24_lib.experts import fine_tune_experts
from arc24_lib.test_time import TestTimeConfig

params = notebook_parameters(globals(), TestTimeParameters)
out = Path(params.output_dir) / "03_test_time_fine_tuning"
tasks = load_dataset(params.tasks_path or Path(params.output_dir) / "01_data" / "tasks_challenges.json")
print(f"{len(tasks)} tasks")

# %% [markdown]
# ## Train an adapter per task

# %%
config = TestTimeConfig(
    model_path=params.model_path, adapter_path=params.adapter_path, output_dir=str(out),
    grid_encoder=params.grid_encoder, prompt_version=params.prompt_version, max_seq_len=params.max_seq_len,
    max_steps=params.max_steps, learning_rate=params.learning_rate, lora_r=params.lora_r,
    lora_layers=params.lora_layers, label_shown_grids=params.label_shown_grids,
    one_kind_augmentation=params.one_kind_augmentation, keep_rule_colors=params.keep_rule_colors,
    own_frame_probability=params.own_frame_probability,
    time_budget_s=params.time_budget_s,
    decay_over_budget=params.decay_over_budget, early_stop_loss=params.early_stop_loss)
by_expert = fine_tune_experts(tasks, config, params.own_frame_share)

# %%
print("| expert | task | status | steps | stop | first loss | final loss | seconds |\n|---|---|---|---|---|---|---|---|")
for expert, results in by_expert.items():
    for r in results:
        print(f"| {expert} | {r['task_id']} | {r['status']} | {r.get('steps', '-')} "
              f"| {r.get('stop_reason', r.get('reason', '-'))} | {r.get('first_loss') or 0:.3f} "
              f"| {r.get('final_loss') or 0:.3f} | {r.get('seconds', '-')} |")
for expert, results in by_expert.items():
    trained = [r for r in results if r["status"] == "trained"]
    plt.plot([r["task_id"] for r in trained], [r["final_loss"] for r in trained], "o", label=expert)
plt.ylabel("final training loss")
plt.xticks(rotation=45)
plt.legend()
plt.show()
assert all(len(results) == len(tasks) for results in by_expert.values())
