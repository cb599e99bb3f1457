"""Kaggle datasets (library wheel, model, offline wheelhouse) and the submission kernel: build each folder,
check its metadata by the kaggle CLI's own rules, and push it with the kaggle CLI (K2)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from arc24_lib.kaggle.install import COMPETITION, WHEELHOUSE_FILE
from arc24_lib.kaggle.metadata import (
    DATASET_METADATA_FILE,
    DEFAULT_ACCELERATOR,
    DEFAULT_LICENSE,
    KERNEL_METADATA_FILE,
    accelerator_problems,
    dataset_metadata,
    kernel_metadata,
    validate_dataset_metadata,
    validate_kernel_metadata,
    write_metadata,
)
from arc24_lib.kaggle.wheelhouse import (
    CUDA_BUILDS,
    DEFAULT_CUDA,
    KAGGLE_PLATFORMS,
    KAGGLE_PYTHON_VERSION,
    REPO_ROOT,
    cuda_needs,
    requirements_file,
    resolve_wheelhouse,
    wheelhouse_command,
)

logger = logging.getLogger(__name__)

DATASETS_DIR = REPO_ROOT / "kaggle_datasets"
SUBMISSION_NOTEBOOK = "kaggle_submission.ipynb"
DATASET_SLUGS = ("arc24-library", "arc24-model", "arc24-wheelhouse")
KINDS = ("dataset", "kernel", "model")
_NO_CREDENTIALS = (
    "no Kaggle credentials found for the kaggle CLI. Provide one of: the KAGGLE_API_TOKEN environment variable "
    "(a token from https://www.kaggle.com/settings/api), the file ~/.kaggle/access_token, "
    "`kaggle auth login`, or a legacy ~/.kaggle/kaggle.json (or KAGGLE_USERNAME and KAGGLE_KEY). "
    "Or rehearse with --dry-run, which needs none.")


@dataclasses.dataclass
class BuildResult:
    """A folder that was built (or, in a dry run, would be), its metadata and the argv that made its files."""

    folder: Path
    metadata: dict[str, Any]
    command: list[str] | None = None
    dry_run: bool = False  # True: nothing was written or run


@dataclasses.dataclass
class PushPlan:
    """The kaggle CLI argv lists of a push (in order), the metadata they upload, and whether they ran."""

    folder: Path
    kind: str  # dataset, kernel or model
    commands: list[list[str]]
    metadata: dict[str, Any] | None
    ran: bool = False  # False for a dry run


def _output_folder(output_dir: str | Path | None, slug: str) -> Path:
    return Path(output_dir) if output_dir is not None else DATASETS_DIR / slug


def _clear_previous_build(folder: Path, metadata_file: str = DATASET_METADATA_FILE) -> None:
    """Empty a folder that holds an earlier build; refuse to touch any other non-empty folder."""
    if not folder.exists() or not any(folder.iterdir()):
        return
    if not (folder / metadata_file).is_file():
        raise ValueError(f"{str(folder)!r} is not empty and holds no {metadata_file}; "
                         "choose an empty or new output folder")
    shutil.rmtree(folder)


def library_wheel_command(source_dir: str | Path, output_dir: str | Path) -> list[str]:
    """The pip argv that builds the arc24 wheel of `source_dir` into `output_dir`."""
    return [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(output_dir),
            str(source_dir)]


def build_library_dataset(output_dir: str | Path | None, owner: str, slug: str = "arc24-library",
                          title: str = "arc24 library", license_name: str = DEFAULT_LICENSE) -> BuildResult:
    """Build the arc24 wheel into a dataset folder and write its metadata."""
    meta = dataset_metadata(owner, slug, title, license_name, "The arc24_lib package as a wheel: "
                            f"pip install --no-deps /kaggle/input/{slug}/*.whl")
    folder = _output_folder(output_dir, slug)
    if not (REPO_ROOT / "pyproject.toml").is_file():
        raise ValueError(f"no pyproject.toml in {str(REPO_ROOT)!r}; build the library from a source checkout")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("arc24-*.whl"):
        old.unlink()
    # A clean copy of the sources: building in place reuses build/lib, where deleted modules linger.
    with tempfile.TemporaryDirectory(prefix="arc24-wheel-") as staging:
        for name in ("pyproject.toml", "setup.py", "setup.cfg", "MANIFEST.in", "README.md", "LICENSE"):
            if (REPO_ROOT / name).is_file():
                shutil.copy2(REPO_ROOT / name, staging)
        shutil.copytree(REPO_ROOT / "arc24_lib", Path(staging) / "arc24_lib",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        command = library_wheel_command(staging, folder)
        logger.info("building the wheel: %s", shlex.join(command))
        completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"the wheel build failed ({completed.returncode}): {completed.stderr[-2000:]}")
    write_metadata(folder, meta)
    return BuildResult(folder, meta, command)


def build_model_dataset(model_dir: str | Path, output_dir: str | Path | None, owner: str,
                        slug: str = "arc24-model", title: str = "arc24 model",
                        license_name: str = DEFAULT_LICENSE) -> BuildResult:
    """Copy a model folder (merged, or base + adapter/; `embedded`: the embedded SmolLM2), subfolders included,
    into a dataset folder."""
    from arc24_lib.models import resolve_model_path

    source = Path(resolve_model_path(model_dir))  # `embedded` → its converted folder; any other path as it is
    if not source.is_dir() or not any(source.iterdir()):
        raise ValueError(f"model folder {str(source)!r} is missing or empty; pass a saved model or adapter folder")
    meta = dataset_metadata(owner, slug, title, license_name, "An arc24 model folder (a merged model, or a base "
                            "model with an adapter/ subfolder) for offline inference.")
    folder = _output_folder(output_dir, slug)
    _clear_previous_build(folder)
    # Training checkpoints are not needed for inference and would multiply the upload.
    shutil.copytree(source, folder, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".git", "__pycache__", "checkpoint-*"))
    write_metadata(folder, meta)
    logger.info("copied %s into %s", source, folder)
    return BuildResult(folder, meta)


def build_wheelhouse_dataset(output_dir: str | Path | None, owner: str, slug: str = "arc24-wheelhouse",
                             title: str = "arc24 wheelhouse", requirements: str | Path | None = None,
                             python_version: str = KAGGLE_PYTHON_VERSION, platforms: Sequence[str] = KAGGLE_PLATFORMS,
                             no_deps: bool = False, dry_run: bool = False,
                             cuda: str | None = DEFAULT_CUDA) -> BuildResult:
    """Download the wheels of the `cuda` build's requirements (or of `requirements`) for Kaggle's GPU image
    into a dataset folder (reruns skip done ones), with the requirements file itself, which the notebook
    installs with `kaggle.install.install_wheelhouse`, and wheelhouse.json: what the wheels need of the
    machine (CUDA driver, compute capability), checked before the install. `cuda` None: CPU wheels."""
    if requirements is None:
        if cuda is None:
            raise ValueError("a CPU wheelhouse (cuda None) needs its requirements file")
        requirements = CUDA_BUILDS[cuda].requirements
    needs = cuda_needs(cuda)
    requirements = requirements_file(requirements)
    meta = dataset_metadata(owner, slug, title, "other", "Offline wheels for Kaggle's GPU image, each under its "
                            f"own license: pip install --no-index --find-links . -r {requirements.name}")
    folder = _output_folder(output_dir, slug)
    command = wheelhouse_command(requirements, folder, python_version, platforms, no_deps)
    if dry_run:
        logger.info("dry run, would run: %s", shlex.join(command))
        return BuildResult(folder, meta, command, dry_run=True)
    folder.mkdir(parents=True, exist_ok=True)
    logger.info("downloading wheels: %s", shlex.join(command))
    subprocess.run(command, check=True)
    for stale in folder.glob("requirements*.txt"):  # the notebook installs the one file it finds
        stale.unlink()
    shutil.copy2(requirements, folder / requirements.name)
    (folder / WHEELHOUSE_FILE).write_text(json.dumps(needs, indent=2) + "\n")
    write_metadata(folder, meta)
    return BuildResult(folder, meta, command)


def build_kernel(output_dir: str | Path | None, owner: str, slug: str = "arc24-submission",
                 title: str = "arc24 submission", accelerator: str = DEFAULT_ACCELERATOR,
                 competition: str = COMPETITION, dataset_slugs: Sequence[str] = DATASET_SLUGS) -> BuildResult:
    """A kernel folder: the submission notebook and its kernel-metadata.json (internet off, the competition
    and the owner's three datasets attached, the GPU `accelerator`)."""
    problems = accelerator_problems(accelerator)
    if problems:
        raise ValueError("; ".join(problems))
    folder = _output_folder(output_dir, slug)
    _clear_previous_build(folder, KERNEL_METADATA_FILE)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO_ROOT / "notebooks" / SUBMISSION_NOTEBOOK, folder / SUBMISSION_NOTEBOOK)
    meta = kernel_metadata(owner, slug, title, SUBMISSION_NOTEBOOK, competition,
                           [f"{owner}/{dataset}" for dataset in dataset_slugs], machine_shape=accelerator)
    write_metadata(folder, meta, "kernel")
    return BuildResult(folder, meta)


def push_commands(folder: str | Path, kind: str, new: bool = True, message: str = "Update from arc24",
                  model_instance: str | None = None, public: bool = False,
                  accelerator: str | None = None) -> list[list[str]]:
    """The kaggle CLI argv lists that upload `folder`; subfolders are zipped so none is dropped."""
    folder = str(folder)
    if kind == "dataset" and new:
        return [["kaggle", "datasets", "create", "-p", folder, "--dir-mode", "zip"] + (["--public"] if public else [])]
    if kind == "dataset":
        return [["kaggle", "datasets", "version", "-p", folder, "-m", message, "--dir-mode", "zip"]]
    if kind == "kernel":  # the accelerator overrides the metadata's machine_shape
        return [["kaggle", "kernels", "push", "-p", folder] + (["--accelerator", accelerator] if accelerator else [])]
    if kind == "model":
        if new or not model_instance or model_instance.count("/") != 3:
            raise ValueError("kind 'model' adds a version to an existing model instance: pass new=False (--version) "
                             f"and model_instance 'owner/model/framework/instance', got {model_instance!r}; "
                             "create the model and instance once on kaggle.com or with `kaggle models create`")
        return [["kaggle", "models", "instances", "versions", "create", model_instance, "-p", folder,
                 "-n", message, "--dir-mode", "zip"]]
    raise ValueError(f"kind {kind!r} is not one of {KINDS}")


def _config_dir() -> Path:
    """Where the kaggle CLI looks for kaggle.json (its own lookup order)."""
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return Path(os.environ["KAGGLE_CONFIG_DIR"])
    legacy = Path.home() / ".kaggle"
    if legacy.exists():
        return legacy
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kaggle"


def credential_sources() -> list[str]:
    """Names (never values) of the kaggle CLI credential sources that exist here."""
    found = [name for name in ("KAGGLE_API_TOKEN",) if os.environ.get(name)]
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        found.append("KAGGLE_USERNAME and KAGGLE_KEY")
    home = Path.home() / ".kaggle"
    for path in (home / "access_token", home / "access_token.txt", home / "credentials.json",
                 _config_dir() / "kaggle.json"):
        if path.is_file() and path.stat().st_size > 0:  # existence only: the files are never opened
            found.append(str(path))
    return found


def _kaggle_executable() -> str:
    beside = Path(sys.executable).parent / "kaggle"
    found = str(beside) if beside.is_file() else shutil.which("kaggle")
    if not found:
        raise RuntimeError("the kaggle CLI is not installed; run `pip install kaggle`")
    return found


def _folder_metadata(folder: Path, kind: str) -> dict[str, Any] | None:
    if kind == "model":
        return None
    name = DATASET_METADATA_FILE if kind == "dataset" else KERNEL_METADATA_FILE
    if not (folder / name).is_file():
        raise ValueError(f"{str(folder)!r} has no {name}; build the folder first (see kaggle_datasets/README.md)")
    meta = json.loads((folder / name).read_text())
    problems = validate_dataset_metadata(meta) if kind == "dataset" else validate_kernel_metadata(meta, folder)
    if problems:
        raise ValueError(f"{folder / name}: " + "; ".join(problems))
    return meta


def push(folder: str | Path, kind: str, dry_run: bool = True, new: bool = True, message: str = "Update from arc24",
         model_instance: str | None = None, public: bool = False, accelerator: str | None = None) -> PushPlan:
    """Check a folder and upload it with the kaggle CLI; a dry run only returns (and logs) what it would run."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"folder {str(folder)!r} does not exist; build it first")
    if accelerator is not None and (kind != "kernel" or accelerator_problems(accelerator)):
        raise ValueError("; ".join(accelerator_problems(accelerator)) or "--accelerator is for --kind kernel only")
    commands = push_commands(folder, kind, new, message, model_instance, public, accelerator)
    plan = PushPlan(folder, kind, commands, _folder_metadata(folder, kind))
    for command in commands:
        logger.info("%s %s", "dry run, would run:" if dry_run else "running:", shlex.join(command))
    if dry_run:
        return plan
    if not credential_sources():
        raise RuntimeError(_NO_CREDENTIALS)
    executable = _kaggle_executable()
    for command in commands:
        completed = subprocess.run([executable, *command[1:]], check=False)  # the CLI reads its own credentials
        if completed.returncode != 0:
            raise RuntimeError(f"`{shlex.join(command)}` failed with exit code {completed.returncode}")
    plan.ran = True
    return plan


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m arc24_lib.kaggle",
                                     description="Build or push arc24's Kaggle folders.")
    commands = parser.add_subparsers(dest="command", required=True)
    library = commands.add_parser("build-library", help="build the arc24 wheel dataset")
    model = commands.add_parser("build-model", help="copy a model folder into a dataset")
    model.add_argument("model_dir", help="merged model, base model with an adapter/ subfolder, or `embedded`")
    wheelhouse = commands.add_parser("build-wheelhouse", help="download wheels for Kaggle's GPU image")
    cuda_help = ("the GPU set's CUDA build: " + "; ".join(f"{name}: {build.requirements}, driver >= {build.min_driver}"
                                                           for name, build in CUDA_BUILDS.items()))
    wheelhouse.add_argument("--cuda", choices=sorted(CUDA_BUILDS), default=DEFAULT_CUDA, help=cuda_help)
    wheelhouse.add_argument("--requirements", default=None, help="default: the --cuda build's file")
    wheelhouse.add_argument("--python-version", default=KAGGLE_PYTHON_VERSION)
    wheelhouse.add_argument("--platform", action="append", help="repeatable; default: Kaggle's manylinux tags")
    wheelhouse.add_argument("--no-deps", action="store_true", help="only the listed packages")
    wheelhouse.add_argument("--dry-run", action="store_true", help="print the pip command, download nothing")
    kernel = commands.add_parser("build-kernel", help="the submission notebook and its kernel metadata")
    kernel.add_argument("--accelerator", default=DEFAULT_ACCELERATOR, help="a GPU machine shape of the kaggle CLI: "
                        "NvidiaTeslaT4 (T4 x2), NvidiaL4 (L4 x4), ...")
    kernel.add_argument("--competition", default=COMPETITION)
    resolve = commands.add_parser("resolve-wheelhouse", help="check that the wheelhouse's set installs on Kaggle "
                                  "(pip's resolver, binary wheels only, nothing downloaded)")
    resolve.add_argument("--cuda", choices=sorted(CUDA_BUILDS), default=DEFAULT_CUDA, help=cuda_help)
    resolve.add_argument("--requirements", default=None, help="default: the --cuda build's file")
    resolve.add_argument("--python-version", default=KAGGLE_PYTHON_VERSION)
    for sub, slug in zip((library, model, wheelhouse, kernel), (*DATASET_SLUGS, "arc24-submission"), strict=True):
        sub.add_argument("--owner", required=True, help="your Kaggle user or organization slug")
        sub.add_argument("--slug", default=slug)
        sub.add_argument("--title", default=slug.replace("-", " "))
        sub.add_argument("--output-dir", default=None, help=f"default: kaggle_datasets/{slug}")
    upload = commands.add_parser("push", help="upload a built folder with the kaggle CLI")
    upload.add_argument("folder")
    upload.add_argument("--kind", choices=KINDS, default="dataset")
    upload.add_argument("--version", metavar="MESSAGE", help="add a version with this message (default: create)")
    upload.add_argument("--model-instance", help="owner/model/framework/instance, for --kind model")
    upload.add_argument("--public", action="store_true", help="create the dataset public (default private)")
    upload.add_argument("--accelerator", help="--kind kernel: run on this GPU machine shape (default: the "
                        "metadata's machine_shape)")
    upload.add_argument("--dry-run", action="store_true", help="print the commands and metadata, run nothing")
    return parser


def _run(args: argparse.Namespace) -> BuildResult | PushPlan | dict[str, str]:
    if args.command == "resolve-wheelhouse":
        args.requirements = args.requirements or CUDA_BUILDS[args.cuda].requirements
        return resolve_wheelhouse(args.requirements, args.python_version)
    if args.command == "build-kernel":
        return build_kernel(args.output_dir, args.owner, args.slug, args.title, args.accelerator, args.competition)
    if args.command == "build-library":
        return build_library_dataset(args.output_dir, args.owner, args.slug, args.title)
    if args.command == "build-model":
        return build_model_dataset(args.model_dir, args.output_dir, args.owner, args.slug, args.title)
    if args.command == "build-wheelhouse":
        return build_wheelhouse_dataset(args.output_dir, args.owner, args.slug, args.title, args.requirements,
                                        args.python_version, tuple(args.platform or KAGGLE_PLATFORMS), args.no_deps,
                                        args.dry_run, args.cuda)
    return push(args.folder, args.kind, args.dry_run, new=args.version is None,
                message=args.version or "Update from arc24", model_instance=args.model_instance, public=args.public,
                accelerator=args.accelerator)


def main(argv: list[str] | None = None) -> None:
    """Build a Kaggle dataset or kernel folder, resolve the wheelhouse, or push a folder (see --help)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = _run(args)
    except (ValueError, RuntimeError, subprocess.CalledProcessError) as error:
        sys.exit(f"error: {error}")
    if isinstance(result, dict):
        print(f"{args.requirements} resolves for Kaggle (Python {args.python_version}): {len(result)} packages, "
              + ", ".join(f"{name}=={result[name]}" for name in ("vllm", "torch", "transformers", "numpy")
                          if name in result))
        return
    commands = result.commands if isinstance(result, PushPlan) else [result.command] if result.command else []
    dry_run = result.dry_run if isinstance(result, BuildResult) else not result.ran
    print(("dry run: nothing was run.\n" if dry_run else "") + f"folder: {result.folder}")
    for command in commands:
        print("$ " + shlex.join(command))
    if result.metadata is not None:
        print(json.dumps(result.metadata, indent=2))


if __name__ == "__main__":
    main()
