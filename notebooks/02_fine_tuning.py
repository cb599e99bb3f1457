# %% [markdown]
# # 02 · Fine-tuning
#
# Fine-tune a model (LoRA or all weights) on a dataset with fresh augmentation for every
# sample and the loss on the answer tokens only. The adapter (or model), its tokenizer,
# checkpoints and config go to `<output_dir>/02_fine_tuning`; a rerun resumes from the last
# checkpoint. Any `FineTuningConfig` field can be set below; the notebook logs, checkpoints
# and validates at a rate that follows `max_steps`.

# %% tags=["parameters"]
output_dir = "outputs/notebooks"
max_steps = 100  # a short run to look at; FineTuningConfig's default is a real one

# %%
import json
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt

from arc24_lib.notebooks import OutputParameters, bind_parameters
from arc24_lib.training import FineTuningConfig, fine_tune

params, config = bind_parameters(globals(), OutputParameters, FineTuningConfig,
                                 fixed=("logging_steps", "save_steps", "eval_steps"))
out = Path(params.output_dir) / "02_fine_tuning"

# %% [markdown]
# ## Train

# %%
config = replace(config, output_dir=str(out), logging_steps=max(1, config.max_steps // 20),
                 save_steps=max(1, config.max_steps // 4), eval_steps=max(1, config.max_steps // 4))
summary = fine_tune(config)
print(json.dumps(summary, indent=2))

# %% [markdown]
# ## Loss curve

# %%
state = json.loads(max(out.glob("checkpoint-*/trainer_state.json"), key=lambda p: p.stat().st_mtime).read_text())
steps = [entry["step"] for entry in state["log_history"] if "loss" in entry]
losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
plt.plot(steps, losses, marker="o")
plt.xlabel("step")
plt.ylabel("answer loss")
plt.savefig(out / "loss.png")
plt.show()
assert summary["global_step"] == config.max_steps
