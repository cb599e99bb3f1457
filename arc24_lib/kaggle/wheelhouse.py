"""The offline wheelhouse for Kaggle's GPU image: its Python and platform tags, the pip commands that download
the wheels or only resolve them, and the check that the pinned set installs there (K2, K4)."""

from __future__ import annotations

import json
import logging
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]
# Kaggle's GPU image: Colab's runtime, CPython 3.12 (since December 2025; 3.11 before) on Ubuntu 22.04, glibc 2.35.
KAGGLE_PYTHON_VERSION = "3.12"
KAGGLE_GLIBC = (2, 35)
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}  # PEP 599/571/513 aliases


def manylinux_platforms(glibc: tuple[int, int] = KAGGLE_GLIBC, arch: str = "x86_64") -> tuple[str, ...]:
    """Every manylinux tag a machine with this glibc accepts, newest first. pip does not widen an explicit
    --platform to older glibcs, and wheels use many (torch 2.14's CUDA libraries: 2_27, 2_25, 2_18)."""
    tags = []
    for minor in range(glibc[1], 4, -1):
        tags.append(f"manylinux_{glibc[0]}_{minor}_{arch}")
        if minor in _LEGACY_MANYLINUX:
            tags.append(f"{_LEGACY_MANYLINUX[minor]}_{arch}")
    return tuple(tags)


KAGGLE_PLATFORMS = manylinux_platforms()


@dataclass(frozen=True)
class CudaBuild:
    """One CUDA build of the GPU set: its requirements file and what its wheels need of the machine."""

    requirements: str
    cuda_version: str
    min_driver: int  # NVIDIA driver major
    min_compute_capability: tuple[int, int]

    def needs(self) -> dict:
        """The wheelhouse.json entries `kaggle.install` checks the machine against (torch from the file's pin)."""
        torch = pinned_requirements(requirements_file(self.requirements)).get("torch")
        return {"torch": torch, "cuda_version": self.cuda_version, "min_driver": self.min_driver,
                "min_compute_capability": list(self.min_compute_capability)}


# The GPU sets, by CUDA major. cu12 is the default: Kaggle's image (docker-python 78aaa43 of 2026-08-12, on
# Colab's runtime of 2026-05-14) runs torch 2.10.0+cu128, so its hosts' drivers run CUDA 12.8; CUDA 12 takes
# drivers from 525 (minor-version compatibility). cu13 (torch 2.14, the newest vLLM) needs driver 580. Both
# torch builds dropped compute capability below 7.5 (the P100's 6.0).
CUDA_BUILDS = {
    "cu12": CudaBuild("requirements-gpu.txt", "12.8", 525, (7, 5)),
    "cu13": CudaBuild("requirements-gpu-cu13.txt", "13.0", 580, (7, 5)),
}
DEFAULT_CUDA = "cu12"


def cuda_needs(cuda: str | None) -> dict:
    """wheelhouse.json for a wheelhouse of the `cuda` build (None: CPU wheels, nothing to check), with the
    other builds as alternatives that an install check can point to."""
    if cuda is None:
        return {"cuda": None}
    if cuda not in CUDA_BUILDS:
        raise ValueError(f"cuda is {cuda!r}; choose one of {sorted(CUDA_BUILDS)}")
    alternatives = {name: build.needs() for name, build in CUDA_BUILDS.items() if name != cuda}
    return {"cuda": cuda, **CUDA_BUILDS[cuda].needs(), "alternatives": alternatives}


def wheelhouse_command(requirements: str | Path, output_dir: str | Path,
                       python_version: str = KAGGLE_PYTHON_VERSION, platforms: Sequence[str] = KAGGLE_PLATFORMS,
                       no_deps: bool = False) -> list[str]:
    """The pip argv that downloads binary wheels for Kaggle's Python and platforms."""
    if not platforms:
        raise ValueError("platforms is empty; pass at least one, e.g. 'manylinux2014_x86_64'")
    command = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--python-version", python_version,
               "--implementation", "cp"]
    for platform in platforms:
        command += ["--platform", platform]
    command += ["-r", str(requirements), "-d", str(output_dir)]
    return command + (["--no-deps"] if no_deps else [])


def requirements_file(requirements: str | Path) -> Path:
    """A requirements file (relative to the checkout when not found here) that stands alone: the wheelhouse
    carries it to Kaggle, where an `-r` or `-c` line would name a file that is not there."""
    path = Path(requirements)
    if not path.is_file() and not path.is_absolute():
        path = REPO_ROOT / path
    if not path.is_file():
        raise ValueError(f"requirements file {str(path)!r} not found; pass --requirements PATH")
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip().startswith(("-r", "-c", "--requirement", "--constraint")):
            raise ValueError(f"{path}:{number}: {line.strip()!r} includes another file; a wheelhouse needs one "
                             "self-contained requirements file")
    return path.resolve()


def resolve_command(requirements: str | Path, report: str | Path, python_version: str = KAGGLE_PYTHON_VERSION,
                    platforms: Sequence[str] = KAGGLE_PLATFORMS) -> list[str]:
    """The pip argv that resolves `requirements` for Kaggle's Python and platforms, downloading no wheel."""
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
               "--python-version", python_version, "--implementation", "cp"]
    for platform in platforms:
        command += ["--platform", platform]
    return command + ["-r", str(requirements), "--report", str(report), "--quiet"]


def pinned_requirements(requirements: Path) -> dict[str, str]:
    """name → version of every `name==version` line (names normalised as pip does)."""
    pins = {}
    for line in requirements.read_text().splitlines():
        requirement = line.split("#")[0].split(";")[0].strip()
        if "==" in requirement:
            name, version = requirement.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name.split("[")[0].strip()).lower()] = version.strip()
    return pins


def resolve_wheelhouse(requirements: str | Path = CUDA_BUILDS[DEFAULT_CUDA].requirements,
                       python_version: str = KAGGLE_PYTHON_VERSION,
                       platforms: Sequence[str] = KAGGLE_PLATFORMS) -> dict[str, str]:
    """Resolve the wheelhouse's set as pip would for Kaggle, with binary wheels only, without downloading one;
    returns name → version of everything it would install. Raises when pip finds no solution or a pin moved."""
    path = requirements_file(requirements)
    with tempfile.TemporaryDirectory(prefix="arc24-resolve-") as scratch:
        report = Path(scratch) / "report.json"
        command = resolve_command(path, report, python_version, platforms)
        logger.info("resolving: %s", shlex.join(command))
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            errors = "\n".join(line for line in completed.stderr.splitlines() if "is ignored" not in line)
            raise RuntimeError(f"{path.name} cannot be installed on Kaggle (Python {python_version}, "
                               f"{platforms[0]} and older):\n{errors[-3000:]}")
        resolved = {item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
                    for item in json.loads(report.read_text())["install"]}
    moved = {name: (version, resolved.get(name)) for name, version in pinned_requirements(path).items()
             if resolved.get(name) != version}
    if moved:
        raise RuntimeError(f"pins of {path.name} not kept by the resolution (pinned, resolved): {moved}")
    return resolved
