"""Kaggle datasets (library wheel, model, offline wheelhouse) and the submission kernel: build each folder,
check its metadata by the kaggle CLI's own rules, and push it with the kaggle CLI (K2)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DATASETS_DIR = REPO_ROOT / "kaggle_datasets"
DATASET_METADATA_FILE = "dataset-metadata.json"
KERNEL_METADATA_FILE = "kernel-metadata.json"
DEFAULT_COMPETITION = "arc-prize-2025"
# Kaggle's GPU image today: CPython 3.11 on Ubuntu 22.04 (glibc 2.35); `any` wheels always qualify.
KAGGLE_PYTHON_VERSION = "3.11"
KAGGLE_PLATFORMS = ("manylinux_2_35_x86_64", "manylinux_2_31_x86_64", "manylinux_2_28_x86_64",
                    "manylinux_2_17_x86_64", "manylinux2014_x86_64")
# The dataset license names of the kaggle CLI's docs/datasets_metadata.md (the server rejects others).
DATASET_LICENSES = frozenset((
    "CC0-1.0 CC-BY-SA-3.0 CC-BY-SA-4.0 CC-BY-NC-SA-4.0 GPL-2.0 ODbL-1.0 DbCL-1.0 copyright-authors other unknown "
    "CC-BY-4.0 CC-BY-NC-4.0 PDDL CC-BY-3.0 CC-BY-3.0-IGO US-Government-Works CC-BY-NC-SA-3.0-IGO CDLA-Permissive-1.0 "
    "CDLA-Sharing-1.0 CC-BY-ND-4.0 CC-BY-NC-ND-4.0 ODC-BY-1.0 LGPL-3.0 AGPL-3.0 FDL-1.3 EU-ODP-Legal-Notice apache-2.0 "
    "GPL-3.0").split())
DEFAULT_LICENSE = "apache-2.0"  # the project's license, as Kaggle datasets spell it
PLACEHOLDERS = ("INSERT_SLUG_HERE", "INSERT_TITLE_HERE")  # what `kaggle datasets init` writes
KINDS = ("dataset", "kernel", "model")
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")  # the CLI's _validate_slug_syntax
_OWNER_SLUG = re.compile(r"^[a-z0-9]+(?:[_-][a-z0-9]+)*$")  # owners may also use underscores
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


def dataset_metadata(owner: str, slug: str, title: str, license_name: str = DEFAULT_LICENSE,
                     description: str = "") -> dict[str, Any]:
    """The dataset-metadata.json content for `owner/slug`."""
    meta: dict[str, Any] = {"id": f"{owner}/{slug}", "title": title, "licenses": [{"name": license_name}]}
    if description:
        meta["description"] = description
    return meta


def _slug_problems(slug: str, what: str, owner: bool = False) -> list[str]:
    pattern = _OWNER_SLUG if owner else _SLUG
    if pattern.match(slug):
        return []
    allowed = "hyphens and underscores" if owner else "single hyphens (no underscores)"
    return [f"{what} {slug!r} must be lowercase letters and digits joined by {allowed}, e.g. 'arc24-library'"]


def _id_problems(ref: Any, what: str) -> list[str]:
    if not isinstance(ref, str) or ref.count("/") != 1 or not all(ref.split("/")):
        return [f"{what} {ref!r} must have the form 'owner/slug' (no version)"]
    owner, slug = ref.split("/")
    return _slug_problems(owner, f"{what} owner", owner=True) + _slug_problems(slug, f"{what} slug")


def validate_dataset_metadata(meta: dict[str, Any]) -> list[str]:
    """Problems `kaggle datasets create` (or Kaggle) would reject the metadata for; [] when it is fine."""
    problems = [f"dataset metadata needs {key!r}" for key in ("id", "title", "licenses") if key not in meta]
    ref, title, licenses = meta.get("id"), meta.get("title"), meta.get("licenses", [])
    if ref is not None:
        problems += _id_problems(ref, "dataset id")
        slug = ref.split("/")[-1] if isinstance(ref, str) else ""
        if not 6 <= len(slug) <= 50:
            problems.append(f"dataset slug {slug!r} has {len(slug)} characters; use 6 to 50")
    if title is not None and not (isinstance(title, str) and 6 <= len(title) <= 50):
        problems.append(f"dataset title {title!r} must be a string of 6 to 50 characters")
    if not isinstance(licenses, list) or len(licenses) != 1:
        problems.append(f"dataset metadata needs exactly one license, got {licenses!r}")
    elif not isinstance(licenses[0], dict) or licenses[0].get("name") not in DATASET_LICENSES:
        problems.append(f"license {licenses[0]!r} is not one of Kaggle's: {', '.join(sorted(DATASET_LICENSES))}")
    subtitle = meta.get("subtitle")
    if subtitle and not 20 <= len(subtitle) <= 80:
        problems.append(f"subtitle {subtitle!r} must have 20 to 80 characters")
    text = json.dumps(meta)
    problems += [f"replace the placeholder {p} in the metadata" for p in PLACEHOLDERS if p in text]
    return problems


def kernel_metadata(owner: str, slug: str, title: str, code_file: str, competition: str,
                    dataset_sources: Sequence[str], model_sources: Sequence[str] = (), enable_gpu: bool = True,
                    enable_internet: bool = False, is_private: bool = True) -> dict[str, Any]:
    """The kernel-metadata.json content of a competition notebook."""
    return {"id": f"{owner}/{slug}", "title": title, "code_file": code_file, "language": "python",
            "kernel_type": "notebook", "is_private": is_private, "enable_gpu": enable_gpu, "enable_tpu": False,
            "enable_internet": enable_internet, "dataset_sources": list(dataset_sources),
            "competition_sources": [competition], "kernel_sources": [], "model_sources": list(model_sources)}


def _kernel_source_problems(meta: dict[str, Any]) -> list[str]:
    problems = []
    if meta.get("enable_internet", True) is not False:  # the CLI turns internet on when the key is missing
        problems.append("enable_internet must be false: competition submissions run offline")
    if not meta.get("competition_sources"):
        problems.append(f"competition_sources is empty; add the competition, e.g. {DEFAULT_COMPETITION!r}")
    for source in meta.get("dataset_sources", []):
        if not isinstance(source, str) or source.count("/") not in (1, 2) or not all(source.split("/")):
            problems.append(f"dataset source {source!r} must have the form 'owner/slug'")
    for source in meta.get("model_sources", []):
        parts = source.split("/") if isinstance(source, str) else []
        if len(parts) != 5 or not all(parts) or not parts[4].isdigit():
            problems.append(f"model source {source!r} must have the form 'owner/model/framework/instance/version'")
    for key in ("is_private", "enable_gpu", "enable_tpu", "enable_internet"):
        if key in meta and not isinstance(meta[key], bool):
            problems.append(f"{key} must be true or false, got {meta[key]!r}")
    return problems


def validate_kernel_metadata(meta: dict[str, Any], folder: str | Path | None = None) -> list[str]:
    """Problems `kaggle kernels push` (or our offline-submission rules) find in the metadata; [] when fine."""
    from slugify import slugify

    ref, title, code_file = meta.get("id"), meta.get("title"), meta.get("code_file")
    problems = ["kernel metadata needs 'id' as 'owner/slug' (no version)"] if not ref else _id_problems(
        ref, "kernel id")
    if not isinstance(title, str) or len(title) < 5:
        problems.append(f"kernel title {title!r} must have at least 5 characters")
    elif isinstance(ref, str) and slugify(title) != ref.split("/")[-1]:
        problems.append(f"kernel title {title!r} slugifies to {slugify(title)!r}, not the id's slug "
                        f"{ref.split('/')[-1]!r}; change the title or the slug so they match")
    if not code_file:
        problems.append("kernel metadata needs 'code_file', the notebook to run")
    elif meta.get("kernel_type") == "notebook" and not str(code_file).endswith(".ipynb"):
        problems.append(f"code_file {code_file!r} must be an .ipynb notebook for kernel_type 'notebook'")
    elif folder is not None and not (Path(folder) / code_file).is_file():
        problems.append(f"code_file {code_file!r} is not in {str(folder)!r}; copy the notebook there")
    if meta.get("language") not in ("python", "r", "rmarkdown"):
        problems.append(f"language {meta.get('language')!r} must be 'python', 'r' or 'rmarkdown'")
    if meta.get("kernel_type") not in ("script", "notebook"):
        problems.append(f"kernel_type {meta.get('kernel_type')!r} must be 'script' or 'notebook'")
    return problems + _kernel_source_problems(meta)


def write_metadata(folder: str | Path, meta: dict[str, Any], kind: str = "dataset") -> Path:
    """Validate `meta` and write it as the folder's dataset- or kernel-metadata.json."""
    problems = validate_dataset_metadata(meta) if kind == "dataset" else validate_kernel_metadata(meta, folder)
    if problems:
        raise ValueError(f"invalid {kind} metadata: " + "; ".join(problems))
    name = DATASET_METADATA_FILE if kind == "dataset" else KERNEL_METADATA_FILE
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta, indent=2) + "\n")
    return path


def _output_folder(output_dir: str | Path | None, slug: str) -> Path:
    return Path(output_dir) if output_dir is not None else DATASETS_DIR / slug


def _clear_previous_build(folder: Path) -> None:
    """Empty a folder that holds an earlier build; refuse to touch any other non-empty folder."""
    if not folder.exists() or not any(folder.iterdir()):
        return
    if not (folder / DATASET_METADATA_FILE).is_file():
        raise ValueError(f"{str(folder)!r} is not empty and holds no {DATASET_METADATA_FILE}; "
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
    """Copy a model folder (merged, or base + adapter/), subfolders included, into a dataset folder."""
    source = Path(model_dir)
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


def build_wheelhouse_dataset(output_dir: str | Path | None, owner: str, slug: str = "arc24-wheelhouse",
                             title: str = "arc24 wheelhouse", requirements: str | Path = "requirements-gpu.txt",
                             python_version: str = KAGGLE_PYTHON_VERSION, platforms: Sequence[str] = KAGGLE_PLATFORMS,
                             no_deps: bool = False, dry_run: bool = False) -> BuildResult:
    """Download the wheels of `requirements` for Kaggle's GPU image into a dataset folder (reruns skip done ones)."""
    requirements = Path(requirements)
    if not requirements.is_file() and not requirements.is_absolute():
        requirements = REPO_ROOT / requirements
    if not requirements.is_file():
        raise ValueError(f"requirements file {str(requirements)!r} not found; pass --requirements PATH")
    requirements = requirements.resolve()
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
    shutil.copy2(requirements, folder / requirements.name)
    write_metadata(folder, meta)
    return BuildResult(folder, meta, command)


def push_commands(folder: str | Path, kind: str, new: bool = True, message: str = "Update from arc24",
                  model_instance: str | None = None, public: bool = False) -> list[list[str]]:
    """The kaggle CLI argv lists that upload `folder`; subfolders are zipped so none is dropped."""
    folder = str(folder)
    if kind == "dataset" and new:
        return [["kaggle", "datasets", "create", "-p", folder, "--dir-mode", "zip"] + (["--public"] if public else [])]
    if kind == "dataset":
        return [["kaggle", "datasets", "version", "-p", folder, "-m", message, "--dir-mode", "zip"]]
    if kind == "kernel":
        return [["kaggle", "kernels", "push", "-p", folder]]
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
         model_instance: str | None = None, public: bool = False) -> PushPlan:
    """Check a folder and upload it with the kaggle CLI; a dry run only returns (and logs) what it would run."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"folder {str(folder)!r} does not exist; build it first")
    commands = push_commands(folder, kind, new, message, model_instance, public)
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
    model.add_argument("model_dir", help="merged model, or base model with an adapter/ subfolder")
    wheelhouse = commands.add_parser("build-wheelhouse", help="download wheels for Kaggle's GPU image")
    wheelhouse.add_argument("--requirements", default="requirements-gpu.txt")
    wheelhouse.add_argument("--python-version", default=KAGGLE_PYTHON_VERSION)
    wheelhouse.add_argument("--platform", action="append", help="repeatable; default: Kaggle's manylinux tags")
    wheelhouse.add_argument("--no-deps", action="store_true", help="only the listed packages")
    wheelhouse.add_argument("--dry-run", action="store_true", help="print the pip command, download nothing")
    for sub, slug in ((library, "arc24-library"), (model, "arc24-model"), (wheelhouse, "arc24-wheelhouse")):
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
    upload.add_argument("--dry-run", action="store_true", help="print the commands and metadata, run nothing")
    return parser


def _run(args: argparse.Namespace) -> BuildResult | PushPlan:
    if args.command == "build-library":
        return build_library_dataset(args.output_dir, args.owner, args.slug, args.title)
    if args.command == "build-model":
        return build_model_dataset(args.model_dir, args.output_dir, args.owner, args.slug, args.title)
    if args.command == "build-wheelhouse":
        return build_wheelhouse_dataset(args.output_dir, args.owner, args.slug, args.title, args.requirements,
                                        args.python_version, tuple(args.platform or KAGGLE_PLATFORMS), args.no_deps,
                                        args.dry_run)
    return push(args.folder, args.kind, args.dry_run, new=args.version is None,
                message=args.version or "Update from arc24", model_instance=args.model_instance, public=args.public)


def main(argv: list[str] | None = None) -> None:
    """Build a Kaggle dataset folder, or push a dataset, kernel or model folder (see --help)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = _run(args)
    except (ValueError, RuntimeError, subprocess.CalledProcessError) as error:
        sys.exit(f"error: {error}")
    commands = result.commands if isinstance(result, PushPlan) else [result.command] if result.command else []
    dry_run = result.dry_run if isinstance(result, BuildResult) else not result.ran
    print(("dry run: nothing was run.\n" if dry_run else "") + f"folder: {result.folder}")
    for command in commands:
        print("$ " + shlex.join(command))
    if result.metadata is not None:
        print(json.dumps(result.metadata, indent=2))


if __name__ == "__main__":
    main()
