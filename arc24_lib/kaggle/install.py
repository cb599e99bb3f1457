"""Offline installation in the Kaggle notebook: the library wheel, then the wheelhouse's whole pinned set (K3),
and the checks that stop a push run before it degrades: the GPUs against what the wheels need, the imports, the
engine's start. Also how a push run and a competition rerun differ in what they do with a problem.

Standard library only. The notebook runs it before numpy, torch or transformers are first imported, so the
run imports the versions the wheelhouse pins, not whatever the Kaggle image has.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)
# Extension packages built against one torch release each. One that no longer imports beside the torch the
# wheelhouse installed (the image's own torchcodec, or PyPI builds beside a CPU torch) breaks
# `import transformers`, so it is removed; matching builds stay.
TORCH_EXTENSIONS = ("torchvision", "torchaudio", "torchcodec")
VERIFIED_IMPORTS = ("numpy", "torch", "transformers", "peft")
_CPYTHON_TAG = re.compile(r"-cp(\d)(\d+)-cp\d+[a-z]*-")  # a wheel built for one CPython: ...-cp312-cp312-...
WHEELHOUSE_FILE = "wheelhouse.json"  # what the wheels need of the machine (kaggle.build_wheelhouse_dataset)
RERUN_VARIABLE = "KAGGLE_IS_COMPETITION_RERUN"  # Kaggle sets it when it reruns a notebook on the hidden tasks
ENGINE_START_S = 900  # the install check's engine start (a model load and one token) must end within this
COMPETITION = "arc-prize-2026-arc-agi-2"  # ARC Prize 2026, ARC-AGI-2 track: the competition's Kaggle slug
CHALLENGES_FILE = "arc-agi_test_challenges.json"  # the tasks a run answers (in a rerun: the hidden ones)
KAGGLE_INPUT = "/kaggle/input"


def competition_challenges(competition: str = COMPETITION, input_dir: str | Path = KAGGLE_INPUT) -> Path:
    """The competition's test challenges: Kaggle mounts a competition at /kaggle/input/competitions/<slug>/
    (older kernels: /kaggle/input/<slug>/). Raises naming both where neither holds the file."""
    places = [Path(input_dir) / "competitions" / competition, Path(input_dir) / competition]
    for place in places:
        if (place / CHALLENGES_FILE).is_file():
            return place / CHALLENGES_FILE
    raise FileNotFoundError(f"no {CHALLENGES_FILE} in {' or '.join(map(str, places))}: add the competition "
                            f"{competition!r} to the notebook's inputs, or set challenges_path")


def is_competition_rerun() -> bool:
    """Whether this is Kaggle's rerun of the notebook on the hidden tasks (scored), not a push run."""
    return bool(os.environ.get(RERUN_VARIABLE))


class RunStopped(RuntimeError):
    """A push run stopped on a problem that would make its submission worse than the run asked for."""


def stop_or_degrade(problems: list[str], degraded: list[str]) -> list[str]:
    """In a push run (the one whose log a competitor reads before submitting), raise RunStopped naming every
    problem. In a competition rerun an exception scores nothing, so there the problems are logged, added to
    `degraded` (the run's summary names them) and the run goes on with its best submission."""
    if not problems:
        return degraded
    if not is_competition_rerun():
        raise RunStopped("the run stops here (a push run; a competition rerun would go on, degraded):\n- "
                         + "\n- ".join(problems))
    for problem in problems:
        logger.error("degraded: %s", problem)
    degraded.extend(problems)
    return degraded


def fallback_entries(task: object) -> list[dict[str, list[list[int]]]]:
    """Both attempts [[0]] (submission.NO_ANSWER) for every test input of a task as read from JSON; one entry
    where its test list cannot be read."""
    tests = task.get("test") if isinstance(task, dict) else None
    count = len(tests) if isinstance(tests, list) and tests else 1
    return [{"attempt_1": [[0]], "attempt_2": [[0]]} for _ in range(count)]


def write_fallback_submission(challenges_path: str | Path, submission_path: str | Path) -> int:
    """A valid submission.json before anything is installed: fallback answers for every test input of every
    task. Returns the number of tasks."""
    from arc24_lib.files import write_json_atomic  # standard library only

    challenges = json.loads(Path(challenges_path).read_text(encoding="utf-8-sig"))
    if not isinstance(challenges, dict):
        raise ValueError(f"{challenges_path}: a challenges file maps task ids to tasks, not "
                         f"{type(challenges).__name__}")
    write_json_atomic({task_id: fallback_entries(task) for task_id, task in challenges.items()}, submission_path)
    return len(challenges)


@dataclass(frozen=True)
class Gpu:
    """One GPU as nvidia-smi reports it."""

    index: int
    name: str
    driver: str  # e.g. "550.54.15"
    compute_capability: tuple[int, int]

    @property
    def driver_major(self) -> int:
        return int(self.driver.split(".")[0])


def nvidia_gpus() -> list[Gpu] | None:
    """The GPUs nvidia-smi lists, or None where it is missing or fails (no NVIDIA driver: no GPU)."""
    command = ["nvidia-smi", "--query-gpu=index,name,driver_version,compute_cap", "--format=csv,noheader"]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if completed.returncode != 0:
        return None
    gpus = []
    for line in completed.stdout.strip().splitlines():
        index, name, driver, capability = (part.strip() for part in line.split(","))
        major, minor = capability.split(".")
        gpus.append(Gpu(int(index), name, driver, (int(major), int(minor))))
    return gpus


def missing_gpu_problems(expect_gpu: bool, gpus: list[Gpu] | None = None) -> list[str]:
    """Why a kernel that asked for a GPU cannot use one: [] where one is visible, or none was asked for."""
    gpus = nvidia_gpus() if gpus is None and expect_gpu else gpus
    if expect_gpu and not gpus:
        return ["the kernel asks for a GPU, but nvidia-smi shows none: turn the accelerator on in the notebook's "
                "settings (or build the kernel with --accelerator); a run without one trains and infers on the CPU "
                "with the hf backend, hundreds of times slower"]
    return []


def gpu_problems(needs: dict, gpus: list[Gpu] | None) -> list[str]:
    """Where the driver or a GPU cannot run the wheelhouse's CUDA build (`needs`: its wheelhouse.json)."""
    build = needs.get("cuda")
    if not build:
        return []  # CPU builds (the rehearsal's stand-in)
    wheels = f"the {build} wheelhouse (torch {needs.get('torch')}, CUDA {needs.get('cuda_version')})"
    if not gpus:
        return [f"{wheels} needs an NVIDIA GPU, but nvidia-smi shows none"]
    problems = []
    driver, least = gpus[0].driver, int(needs["min_driver"])
    if gpus[0].driver_major < least:
        others = [name for name, other in needs.get("alternatives", {}).items() if gpus[0].driver_major >=
                  int(other["min_driver"])]
        fix = (f"rebuild the wheelhouse for this driver: `python -m arc24_lib.kaggle build-wheelhouse --cuda "
               f"{others[0]}`" if others else "no wheelhouse of arc24 runs on this driver")
        problems.append(f"the NVIDIA driver is {driver}, but {wheels} needs {least} or newer: {fix}")
    least_capability = tuple(needs["min_compute_capability"])
    for gpu in gpus:
        if gpu.compute_capability < least_capability:
            problems.append(f"GPU {gpu.index} ({gpu.name}) has compute capability "
                            f"{'.'.join(map(str, gpu.compute_capability))}, but {wheels} needs "
                            f"{'.'.join(map(str, least_capability))} or newer (T4, L4, A100, H100 ...): choose "
                            "another accelerator")
    return problems


@dataclass
class InstallReport:
    """What an offline installation did; `problems` say where the run would not import what the wheelhouse pins
    (or could not run it): `ok` is False when there is one."""

    messages: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, *problems: str) -> InstallReport:
        self.problems.extend(problems)
        self.messages.extend(f"PROBLEM: {problem}" for problem in problems)
        return self

    def __str__(self) -> str:
        return "\n".join(self.messages)


def _run(command: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def _last_error(completed: subprocess.CompletedProcess) -> str:
    lines = completed.stderr.strip().splitlines() or ["(no error output)"]
    return lines[-1][-400:]


def _imports(modules: list[str] | tuple[str, ...]) -> str | None:
    """None when `modules` import together in a fresh interpreter, else the end of the error."""
    completed = _run([sys.executable, "-c", "import " + ", ".join(modules)])
    return None if completed.returncode == 0 else _last_error(completed)


def engine_start_problem(model_path: str | Path, timeout_s: float = ENGINE_START_S) -> str | None:
    """None when vLLM's engine starts on `model_path` in a fresh interpreter and writes a token (the smallest
    real start: torch, the CUDA libraries, transformers' config and tokenizer, the model's weights), else why not.
    Importing vllm alone proves none of that: a torch extension removed beside it, or a driver too old for its
    CUDA build, shows only when the engine starts."""
    command = [sys.executable, "-m", "arc24_lib.inference.vllm", "--start-check", str(model_path)]
    try:
        completed = _run(command, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return f"vLLM's engine did not start on {model_path} within {timeout_s:.0f} s"
    if completed.returncode != 0:
        return f"vLLM's engine does not start on {model_path}: {_last_error(completed)}"
    return None


def wheelhouse_requirements(wheelhouse_dir: str | Path) -> Path:
    """The one requirements file a wheelhouse dataset carries (kaggle.build_wheelhouse_dataset copies it in)."""
    found = sorted(Path(wheelhouse_dir).glob("requirements*.txt"))
    if len(found) != 1:
        raise ValueError(f"{wheelhouse_dir} holds {len(found)} requirements*.txt files ({[p.name for p in found]}); "
                         "a wheelhouse built by `python -m arc24_lib.kaggle build-wheelhouse` holds one")
    return found[0]


def wheelhouse_needs(wheelhouse_dir: str | Path) -> dict:
    """What the wheelhouse's wheels need of the machine (its wheelhouse.json); {} for one built without it."""
    path = Path(wheelhouse_dir) / WHEELHOUSE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def wheelhouse_pythons(wheelhouse_dir: str | Path) -> set[str]:
    """The CPython versions ('3.12') its version-specific wheels were built for; pure and abi3 wheels say none."""
    return {f"{m[1]}.{m[2]}" for wheel in Path(wheelhouse_dir).glob("*.whl") if (m := _CPYTHON_TAG.search(wheel.name))}


def install_wheelhouse(wheelhouse_dir: str | Path | None, verify: tuple[str, ...] = VERIFIED_IMPORTS,
                       model_path: str | Path | None = None, gpus: list[Gpu] | None = None) -> InstallReport:
    """Check the GPUs against the wheelhouse's CUDA build (`gpus`: nvidia-smi's where not given), pip install
    --no-index its pinned set, drop torch extensions that no longer import, check that `verify` imports in a
    fresh interpreter and, where the set has vLLM and `model_path` is given, that its engine starts on the model.
    `wheelhouse_dir` None: nothing to install (a run on the packages at hand, as the tests do)."""
    report = InstallReport()
    if wheelhouse_dir is None:
        report.messages.append("no wheelhouse asked for: the packages installed here are used")
        return report
    folder = Path(wheelhouse_dir)
    if not folder.is_dir():
        return report.fail(f"no wheelhouse at {folder}: the image's own packages would be used, not the pinned set")
    requirements = wheelhouse_requirements(folder)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    pythons = wheelhouse_pythons(folder)
    if pythons and running not in pythons:
        return report.fail(f"the wheelhouse {folder} holds wheels for Python {', '.join(sorted(pythons))}, but this "
                           f"kernel runs Python {running}: rebuild it with `build-wheelhouse --python-version "
                           f"{running}`")
    needs = wheelhouse_needs(folder)
    if needs.get("cuda"):
        gpus = nvidia_gpus() if gpus is None else gpus
        found = ", ".join(f"GPU {g.index} {g.name} (compute capability {'.'.join(map(str, g.compute_capability))})"
                          for g in gpus or [])
        report.messages.append(f"{needs['cuda']} wheelhouse; driver {gpus[0].driver if gpus else 'none'}; "
                               f"{found or 'no GPU'}")
        problems = gpu_problems(needs, gpus)
        if problems:
            return report.fail(*problems)
    completed = _run([sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(folder), "-r",
                      str(requirements)])
    if completed.returncode != 0:
        return report.fail(f"offline install of {requirements.name} failed:\n{completed.stderr[-3000:]}")
    report.messages.append(f"installed {requirements.name} from {folder}")
    for extension in TORCH_EXTENSIONS:
        if _run([sys.executable, "-m", "pip", "show", "-q", extension]).returncode != 0:
            continue  # not installed
        problem = _imports(["torch", extension])
        if problem:
            _run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", extension])
            report.messages.append(f"removed {extension}, which does not import beside this torch ({problem})")
    with_vllm = "vllm" in requirements.read_text()
    names = list(verify) + (["vllm"] if with_vllm else [])
    problem = _imports(names)
    if problem:
        return report.fail(f"after the install, `import {', '.join(names)}` fails: {problem}")
    report.messages.append(f"import {', '.join(names)}: fine")
    if with_vllm and model_path is not None:
        problem = engine_start_problem(model_path)
        if problem:
            return report.fail(problem)
        report.messages.append(f"vLLM's engine starts on {model_path} and writes a token")
    return report
