"""Offline installation in the Kaggle notebook: the library wheel, then the wheelhouse's whole pinned set (K3).

Standard library only. The notebook runs it before numpy, torch or transformers are first imported, so the
run imports the versions the wheelhouse pins, not whatever the Kaggle image has.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Extension packages built against one torch release each. One that no longer imports beside the torch the
# wheelhouse installed (the image's own torchcodec, or PyPI builds beside a CPU torch) breaks
# `import transformers`, so it is removed; matching builds stay.
TORCH_EXTENSIONS = ("torchvision", "torchaudio", "torchcodec")
VERIFIED_IMPORTS = ("numpy", "torch", "transformers", "peft", "trl")
_CPYTHON_TAG = re.compile(r"-cp(\d)(\d+)-cp\d+[a-z]*-")  # a wheel built for one CPython: ...-cp312-cp312-...


@dataclass
class InstallReport:
    """What an offline installation did; `ok` is False when the pinned set is not what the run will import."""

    ok: bool = True
    messages: list[str] = field(default_factory=list)

    def fail(self, message: str) -> InstallReport:
        self.ok = False
        self.messages.append(message)
        return self

    def __str__(self) -> str:
        return "\n".join(self.messages)


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True)


def _imports(modules: list[str] | tuple[str, ...]) -> str | None:
    """None when `modules` import together in a fresh interpreter, else the end of the error."""
    completed = _run([sys.executable, "-c", "import " + ", ".join(modules)])
    return None if completed.returncode == 0 else completed.stderr.strip().splitlines()[-1][-400:]


def wheelhouse_requirements(wheelhouse_dir: str | Path) -> Path:
    """The one requirements file a wheelhouse dataset carries (kaggle.build_wheelhouse_dataset copies it in)."""
    found = sorted(Path(wheelhouse_dir).glob("requirements*.txt"))
    if len(found) != 1:
        raise ValueError(f"{wheelhouse_dir} holds {len(found)} requirements*.txt files ({[p.name for p in found]}); "
                         "a wheelhouse built by `python -m arc24_lib.kaggle build-wheelhouse` holds one")
    return found[0]


def wheelhouse_pythons(wheelhouse_dir: str | Path) -> set[str]:
    """The CPython versions ('3.12') its version-specific wheels were built for; pure and abi3 wheels say none."""
    return {f"{m[1]}.{m[2]}" for wheel in Path(wheelhouse_dir).glob("*.whl") if (m := _CPYTHON_TAG.search(wheel.name))}


def install_wheelhouse(wheelhouse_dir: str | Path, verify: tuple[str, ...] = VERIFIED_IMPORTS) -> InstallReport:
    """pip install --no-index the wheelhouse's pinned set, drop torch extensions that no longer import, and
    check that `verify` imports in a fresh interpreter."""
    report, folder = InstallReport(), Path(wheelhouse_dir)
    if not folder.is_dir():
        return report.fail(f"no wheelhouse at {folder}: the image's own packages will be used")
    requirements = wheelhouse_requirements(folder)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    pythons = wheelhouse_pythons(folder)
    if pythons and running not in pythons:
        return report.fail(f"the wheelhouse {folder} holds wheels for Python {', '.join(sorted(pythons))}, but this "
                           f"kernel runs Python {running}: rebuild it with `build-wheelhouse --python-version "
                           f"{running}`")
    command = [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(folder), "-r",
               str(requirements)]
    completed = _run(command)
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
    names = list(verify) + (["vllm"] if "vllm" in requirements.read_text() else [])
    problem = _imports(names)
    if problem:
        return report.fail(f"after the install, `import {', '.join(names)}` fails: {problem}")
    report.messages.append(f"import {', '.join(names)}: fine")
    return report
