# %% [markdown]
# # 01 · Data
#
# Pick ARC tasks from a built-in dataset or a file, look at them, and measure how many tokens
# their prompts take with test-time training's model, grid encoder and prompt (any
# `TaskFormat` or `TestTimeConfig` field can be set below). The chosen tasks are written to
# `<output_dir>/01_data/tasks_challenges.json` (solutions beside it) for the next notebooks.

# %% tags=["parameters"]
dataset = "arc-agi-1/training"
task_ids = []  # empty: the n_tasks smallest tasks
n_tasks = 6
output_dir = "outputs/notebooks"

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from arc24_lib.data import get_dataset, save_dataset, task_path
from arc24_lib.models import load_tokenizer
from arc24_lib.notebooks import DataParameters, bind_parameters
from arc24_lib.partitions import smallest_tasks, subset_by_ids
from arc24_lib.plotting import plot_task, save_figure
from arc24_lib.prompting import token_report
from arc24_lib.task_format import TaskFormat
from arc24_lib.test_time import TestTimeConfig

params, task_format, config = bind_parameters(globals(), DataParameters, TaskFormat, TestTimeConfig)
out = Path(params.output_dir) / "01_data"

# %% [markdown]
# ## Load and choose tasks

# %%
source = get_dataset(params.dataset)
tasks = subset_by_ids(source, params.task_ids) if params.task_ids else smallest_tasks(source, params.n_tasks)
path = save_dataset(tasks, out / "tasks_challenges.json")
print(f"{len(tasks)} of {len(source)} tasks from {params.dataset} → {path}")
for task in tasks:
    print(f"  {task.task_id}: {len(task.train)} train pairs, {len(task.test)} test inputs, {task.n_cells} cells")
assert len(tasks) > 0

# %% [markdown]
# ## Pictures

# %%
for task in tasks:
    figure = plot_task(task)
    plt.show()
    save_figure(figure, task_path(out / "pictures", task.task_id, ".png"))

# %% [markdown]
# ## Token budget
# Tokens of the full training prompt (prompt + answer) per test input, with the model's tokenizer.

# %%
tokenizer = load_tokenizer(task_format.model_path)
report = token_report(tasks, task_format.encoder, tokenizer, task_format.prompt_version,
                      max_lengths=(config.max_seq_len,))
table = (f"| prompts | median | p90 | max | fits {config.max_seq_len} |\n|---|---|---|---|---|\n"
         f"| {report['prompts']} | {report['median']:.0f} | {report['p90']:.0f} | {report['max']} | "
         f"{report['fits'][config.max_seq_len]:.0%} |")
(out / "token_report.md").write_text(table + "\n")
print(table)
plt.hist(report["lengths"], bins=20)
plt.xlabel("tokens per prompt")
plt.ylabel("test inputs")
plt.show()
assert np.all(report["lengths"] > 0)
