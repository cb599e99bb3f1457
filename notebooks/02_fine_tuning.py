# %% [markdown]
# # 02 · Fine-tuning
#
# Fine-tune a model (LoRA or all weights) on a dataset with fresh augmentation for every
# sample and the loss on the answer tokens only. The adapter (or model), its tokenizer,
# checkpoints and config go to `<output_dir>/02_fine_tuning`; a rerun resumes from the last
# checkpoint.

# %% tags=["parameters"]
train_dataset = "arc-agi-1/training"
val_dataset = None
prompt_version = "output-from-examples-v2"
model_path = "embedded"
adapter_path = None
grid_encoder = "GridShapeEncoder(RowNumberEncoder(MinimalGridEncoder()))"
max_seq_len = 2048
max_steps = 100
learning_rate = 1e-4
batch_size = 16
use_lora = True
lora_r = 32
output_dir = "outputs/notebooks"

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt

from arc24_lib.notebooks import FineTuningParameters, notebook_parameters
from arc24_lib.training import FineTuningConfig, fine_tune

params = notebook_parameters(globals(), FineTuningParameters)
out = Path(params.output_dir) / "02_fine_tuning"

# %% [markdown]
# ## Train

# %%
config = FineTuningConfig(
    model_path=params.model_path, adapter_path=params.adapter_path, output_dir=str(out),
    train_datasets=[(params.train_dataset, params.prompt_version)],
    val_dataset=(params.val_dataset, params.prompt_version) if params.val_dataset else None,
    grid_encoder=params.grid_encoder, max_seq_len=params.max_seq_len, max_steps=params.max_steps,
    learning_rate=params.learning_rate, batch_size=params.batch_size, use_lora=params.use_lora,
    lora_r=params.lora_r, logging_steps=max(1, params.max_steps // 20), save_steps=max(1, params.max_steps // 4),
    eval_steps=max(1, params.max_steps // 4))
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
assert summary["global_step"] == params.max_steps
