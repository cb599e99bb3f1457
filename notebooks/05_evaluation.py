# %% [markdown]
# # 05 · Evaluation
#
# Score the predictions of 04 against the truth: accuracy, correct pixels and size, pass@n,
# vote_1 and vote_2, unanswered; averaged per task then over tasks. Writes `metrics.json`,
# `report.md` and pictures of the attempts against the truth to `<output_dir>/05_evaluation`.

# %% tags=["parameters"]
tasks_path = None  # None: the tasks 01_data wrote (with solutions)
predictions_path = None  # None: what 04_inference wrote
n_pictures = 12
output_dir = "outputs/notebooks"

# %%
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Image, Markdown, display

from arc24_lib.data import load_dataset
from arc24_lib.notebooks import EvaluationParameters, notebook_parameters
from arc24_lib.pipeline import vote_and_report

params = notebook_parameters(globals(), EvaluationParameters)
out = Path(params.output_dir) / "05_evaluation"
tasks = load_dataset(params.tasks_path or Path(params.output_dir) / "01_data" / "tasks_challenges.json")
predictions = params.predictions_path or Path(params.output_dir) / "04_inference" / "predictions.jsonl"

# %% [markdown]
# ## Metrics

# %%
outputs = vote_and_report(tasks, predictions, out, picture_task_ids=tasks.task_ids[: params.n_pictures])
display(Markdown(Path(outputs["report"]).read_text().split("## Pictures")[0]))
print(f"solved {outputs['solved']}/{len(tasks)} tasks (vote_2)")

# %% [markdown]
# ## Attempts against the truth

# %%
for picture in sorted((out / "pictures").glob("*.png")):
    display(Image(filename=str(picture)))
plt.close("all")
assert Path(outputs["metrics"]).exists()
