# %% [markdown]
# # 03 · Test-time fine-tuning
#
# Train one LoRA adapter per task on its own train pairs: each train pair in turn is the
# target and the others are the examples (leave-one-out), freshly augmented every step.
# Adapters go to `<output_dir>/03_test_time_fine_tuning/<task_id>`; finished tasks are kept
# on a rerun. Any `TaskFormat` (model, encoder, prompt, augmentations) or `TestTimeConfig` field
# can be set below; the format is saved beside the adapters, and 04 infers in it. The solve path (`solve.solve_task`, the bench, the Kaggle run)
# trains and infers task by task instead, within one budget per task.

# %% tags=["parameters"]
tasks_path = None  # None: the tasks 01_data wrote
output_dir = "outputs/notebooks"
time_budget_s = 150.0  # per task: a look at a few tasks, where the solve path gives each its budget

# %%
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt

from arc24_lib.data import load_dataset
from arc24_lib.notebooks import StageParameters, bind_parameters
from arc24_lib.task_format import TaskFormat
from arc24_lib.test_time import TestTimeConfig, fine_tune_at_test_time

params, task_format, config = bind_parameters(globals(), StageParameters, TaskFormat, TestTimeConfig)
out = Path(params.output_dir) / "03_test_time_fine_tuning"
tasks = load_dataset(params.tasks_path or Path(params.output_dir) / "01_data" / "tasks_challenges.json")
print(f"{len(tasks)} tasks")

# %% [markdown]
# ## Train an adapter per task

# %%
config = replace(config, output_dir=str(out))
results = fine_tune_at_test_time(tasks, config, task_format)

# %%
print("| task | status | steps | stop | first loss | final loss | seconds |\n|---|---|---|---|---|---|---|")
for r in results:
    print(f"| {r['task_id']} | {r['status']} | {r.get('steps', '-')} | {r.get('stop_reason', r.get('reason', '-'))} "
          f"| {r.get('first_loss') or 0:.3f} | {r.get('final_loss') or 0:.3f} | {r.get('seconds', '-')} |")
trained = [r for r in results if r["status"] == "trained"]
plt.plot([r["task_id"] for r in trained], [r["first_loss"] for r in trained], "o", label="first")
plt.plot([r["task_id"] for r in trained], [r["final_loss"] for r in trained], "o", label="final")
plt.ylabel("training loss")
plt.xticks(rotation=45)
plt.legend()
plt.show()
assert len(results) == len(tasks)
