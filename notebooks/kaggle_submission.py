# %% [markdown]
# # Kaggle submission
#
# The competition notebook: offline, on Kaggle's GPUs. It writes a valid `submission.json`
# for every task before anything else, then per task runs test-time fine-tuning and AIRV
# inference within a per-task cap and a global deadline, one worker per GPU, and rewrites
# `submission.json` after every task, so a crash or a timeout still submits. A run in which
# no task got an answer from the model fails at the end, after the fallback file is written.
# Attach the datasets built by `python -m arc24_lib.kaggle` (library wheel, model, wheelhouse).
# A push run (the one you read before submitting) stops on any problem that would make the
# competition run worse than asked: a wheelhouse that does not install or does not fit the GPU's
# driver, no GPU, a backend other than the one asked for. Kaggle's rerun on the hidden tasks goes
# on instead and names what degraded. Outside that rerun, `run_mode` "auto" solves only a few
# tasks (a smoke run) so that a push does not spend hours of GPU quota.
# Test-time training and inference take every setting from the library's `TaskFormat` (read by both),
# `TestTimeConfig` and `InferenceConfig`, except where `kaggle.run.KAGGLE_DIFFERENCES` says (and why); a
# `task_format`, `test_time` or `inference` dict in the parameters cell changes any of their fields.

# %% tags=["parameters"]
# What the install step reads before the library is there; every other field of
# `kaggle.run.KaggleRunConfig` (run_mode, deadline_s, n_workers, task_format, test_time, inference, ...)
# may be set here too, e.g. inference = {"generator": "dfs"}, and the rest take its defaults.
competition = "arc-prize-2026-arc-agi-2"
challenges_path = None  # None: the competition's arc-agi_test_challenges.json under /kaggle/input
submission_path = "/kaggle/working/submission.json"
library_dir = "/kaggle/input/arc24-library"
wheelhouse_dir = "/kaggle/input/arc24-wheelhouse"
task_format = {"model_path": "/kaggle/input/arc24-model"}  # merged, or base + adapter/ (training starts from it)
expect_gpu = True  # the kernel runs on a GPU; without one a push run stops

# %% [markdown]
# ## Install offline
# The library comes as a wheel dataset; vLLM and its pins (torch, transformers, peft, ...)
# from the wheelhouse dataset, installed before any of them is imported, once a fallback
# `submission.json` is on disk. The install checks the GPUs' driver and compute capability
# against the wheelhouse's CUDA build, the imports, and that vLLM's engine starts on the model.

# %%
import importlib.util
import subprocess
import sys
from pathlib import Path

if importlib.util.find_spec("arc24_lib") is None:
    wheels = sorted(Path(library_dir).glob("arc24-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", *map(str, wheels[-1:])],
                   check=True)
    importlib.invalidate_caches()

from arc24_lib.kaggle.install import (  # noqa: E402  (standard library only)
    competition_challenges,
    install_wheelhouse,
    is_competition_rerun,
    missing_gpu_problems,
    stop_or_degrade,
    write_fallback_submission,
)

challenges = challenges_path or str(competition_challenges(competition))
print(f"fallback answers for {write_fallback_submission(challenges, submission_path)} tasks in {submission_path}")
print("Kaggle's competition rerun: problems are named in the summary and the run goes on" if is_competition_rerun()
      else "a push run: any problem stops the run here")
degraded = stop_or_degrade(missing_gpu_problems(expect_gpu), [])  # a push run stops before the install
report = install_wheelhouse(wheelhouse_dir, model_path=task_format["model_path"])
print(report)
degraded = stop_or_degrade(report.problems, degraded)

# %%
import arc24_lib  # noqa: E402
from arc24_lib.kaggle.run import KaggleRunConfig, finish_run, run_submission  # noqa: E402
from arc24_lib.notebooks import notebook_parameters  # noqa: E402

print(f"arc24 {arc24_lib.__version__} from {Path(arc24_lib.__file__).parent}")
config = notebook_parameters(globals(), KaggleRunConfig,
                             ignore=("library_dir", "wheelhouse_dir", "wheels", "report", "challenges", "degraded"))

# %% [markdown]
# ## Run
# `submission.json` is valid from the first second; every finished task improves it.

# %%
summary = run_submission(config)
print(summary)

# %% [markdown]
# ## Check
# The submission must hold both attempts of every test input (else this raises); a run that
# answered no task fails here, and a push run stops on a backend other than the one asked for.

# %%
summary = finish_run(config, summary, degraded)
print(f"{summary['mode']} run: answered by the model {summary['answered']} of {summary['tasks']} tasks "
      f"({summary['tasks_chosen']} chosen), backends {summary['backends_used']}")
print(f"degraded: {summary['degraded'] or 'nothing'}")
print(Path(config.work_dir, "run.log").read_text()[-3000:])
