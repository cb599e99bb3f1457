# %% [markdown]
# # 04 · Inference
#
# Augment, infer, revert (AIRV): several predictions per test input under rotations, flips
# and colour permutations, each brought back to the original frame; then vote two attempts
# per test input and write `submission.json`. The model never sees test outputs. Everything
# goes to `<output_dir>/04_inference`; a rerun makes only the missing predictions. Any
# `InferenceConfig` field can be set below, e.g. `generator = "dfs"` (depth-first search) or
# `adapters_dir` (default: the adapters 03 wrote, if any); with 03's adapters, the task format
# (model, grid encoder, prompt, augmentations) is the one saved beside them, else any `TaskFormat`
# field can be set too.

# %% tags=["parameters"]
tasks_path = None  # None: the tasks 01_data wrote
output_dir = "outputs/notebooks"

# %%
import json
from dataclasses import replace
from pathlib import Path

from arc24_lib.data import load_dataset
from arc24_lib.inference.airv import InferenceConfig
from arc24_lib.notebooks import StageParameters, bind_parameters
from arc24_lib.pipeline import predict
from arc24_lib.task_format import TaskFormat

params, task_format, config = bind_parameters(globals(), StageParameters, TaskFormat, InferenceConfig)
out = Path(params.output_dir) / "04_inference"
tasks = load_dataset(params.tasks_path or Path(params.output_dir) / "01_data" / "tasks_challenges.json")
adapters = config.adapters_dir or Path(params.output_dir) / "03_test_time_fine_tuning"
print(f"{len(tasks)} tasks; adapters: {adapters if Path(adapters).is_dir() else 'none (base model)'}")

# %% [markdown]
# ## Predict and vote

# %%
config = replace(config, adapters_dir=str(adapters) if Path(adapters).is_dir() else None, output_dir=str(out))
outputs = predict(tasks.without_solutions(), config, task_format)  # the solutions are 05's
print(json.dumps(outputs, default=str, indent=2))

# %%
submission = json.loads(Path(outputs["submission"]).read_text())
for task_id, entries in submission.items():
    print(task_id, [f"{len(e['attempt_1'])}x{len(e['attempt_1'][0])}" for e in entries])
assert set(submission) == set(tasks.task_ids)
