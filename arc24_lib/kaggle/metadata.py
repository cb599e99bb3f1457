"""Kaggle metadata by the kaggle CLI's own rules: dataset-metadata.json and kernel-metadata.json, their
checks before anything is written or pushed, and the accelerators a kernel may ask for (K2)."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from arc24_lib.kaggle.install import COMPETITION

DATASET_METADATA_FILE = "dataset-metadata.json"
KERNEL_METADATA_FILE = "kernel-metadata.json"
# The dataset license names of the kaggle CLI's docs/datasets_metadata.md (the server rejects others).
DATASET_LICENSES = frozenset((
    "CC0-1.0 CC-BY-SA-3.0 CC-BY-SA-4.0 CC-BY-NC-SA-4.0 GPL-2.0 ODbL-1.0 DbCL-1.0 copyright-authors other unknown "
    "CC-BY-4.0 CC-BY-NC-4.0 PDDL CC-BY-3.0 CC-BY-3.0-IGO US-Government-Works CC-BY-NC-SA-3.0-IGO CDLA-Permissive-1.0 "
    "CDLA-Sharing-1.0 CC-BY-ND-4.0 CC-BY-NC-ND-4.0 ODC-BY-1.0 LGPL-3.0 AGPL-3.0 FDL-1.3 EU-ODP-Legal-Notice apache-2.0 "
    "GPL-3.0").split())
DEFAULT_LICENSE = "apache-2.0"  # the project's license, as Kaggle datasets spell it
PLACEHOLDERS = ("INSERT_SLUG_HERE", "INSERT_TITLE_HERE")  # what `kaggle datasets init` writes
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")  # the CLI's _validate_slug_syntax
_OWNER_SLUG = re.compile(r"^[a-z0-9]+(?:[_-][a-z0-9]+)*$")  # owners may also use underscores
# The kaggle CLI's machine shapes (`kaggle kernels push --accelerator`, or `machine_shape` in
# kernel-metadata.json; listed in the CLI's docs/kernels.md). The notebook runs one worker per GPU.
GPU_ACCELERATORS = {
    "NvidiaTeslaT4": "GPU T4 x2, the default GPU (compute capability 7.5: float16)",
    "NvidiaTeslaT4Highmem": "GPU T4 x2 with more host memory",
    "NvidiaL4": "GPU L4 x4 (compute capability 8.9: bfloat16), where the competition offers it",
    "NvidiaL4X1": "GPU L4 x1",
    "NvidiaTeslaA100": "GPU A100, some competitions only",
    "NvidiaH100": "GPU H100, some competitions only",
    "NvidiaRtxPro6000": "GPU RTX Pro 6000, some competitions only",
    "NvidiaTeslaP100": "retired: the session runs on NvidiaTeslaT4 instead (the CLI warns)",
}
TPU_ACCELERATORS = ("TpuV38", "Tpu1VmV38", "TpuV5E8", "TpuV6E8")
DEFAULT_ACCELERATOR = "NvidiaTeslaT4"


def accelerator_problems(name: Any) -> list[str]:
    """Why `name` is not an accelerator the submission notebook can run on; [] when it is."""
    if name in GPU_ACCELERATORS:
        return []
    if name in TPU_ACCELERATORS:
        return [f"accelerator {name!r} is a TPU; arc24 runs on GPUs (vLLM and the hf backend use CUDA): choose one "
                f"of {', '.join(GPU_ACCELERATORS)}"]
    close = difflib.get_close_matches(str(name), GPU_ACCELERATORS, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return [f"accelerator {name!r} is not one of the kaggle CLI's GPU machine shapes{hint}: "
            + "; ".join(f"{key}: {value}" for key, value in GPU_ACCELERATORS.items())]


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
                    dataset_sources: Sequence[str], model_sources: Sequence[str] = (),
                    machine_shape: str = DEFAULT_ACCELERATOR, enable_internet: bool = False,
                    is_private: bool = True) -> dict[str, Any]:
    """The kernel-metadata.json content of a competition notebook on a GPU `machine_shape`."""
    return {"id": f"{owner}/{slug}", "title": title, "code_file": code_file, "language": "python",
            "kernel_type": "notebook", "is_private": is_private, "enable_gpu": True, "enable_tpu": False,
            "machine_shape": machine_shape, "enable_internet": enable_internet,
            "dataset_sources": list(dataset_sources), "competition_sources": [competition], "kernel_sources": [],
            "model_sources": list(model_sources)}


def _kernel_source_problems(meta: dict[str, Any]) -> list[str]:
    problems = []
    if meta.get("enable_internet", True) is not False:  # the CLI turns internet on when the key is missing
        problems.append("enable_internet must be false: competition submissions run offline")
    if not meta.get("competition_sources"):
        problems.append(f"competition_sources is empty; add the competition, e.g. {COMPETITION!r}")
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
    if meta.get("machine_shape"):  # the CLI sends it as is; the server falls back silently on a name it lacks
        problems += accelerator_problems(meta["machine_shape"])
        if meta.get("enable_gpu") is not True:
            problems.append(f"machine_shape {meta['machine_shape']!r} needs enable_gpu true")
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


