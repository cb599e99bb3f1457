"""Kaggle folders: metadata rules, push commands, dry runs, credentials never leaked, real builds."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from arc24_lib.kaggle import datasets
from arc24_lib.kaggle.datasets import (
    build_kernel,
    build_library_dataset,
    build_model_dataset,
    build_wheelhouse_dataset,
    credential_sources,
    push,
    push_commands,
)
from arc24_lib.kaggle.metadata import (
    DATASET_METADATA_FILE,
    accelerator_problems,
    dataset_metadata,
    kernel_metadata,
    validate_dataset_metadata,
    validate_kernel_metadata,
    write_metadata,
)
from arc24_lib.kaggle.wheelhouse import (
    KAGGLE_PLATFORMS,
    manylinux_platforms,
    pinned_requirements,
    requirements_file,
    resolve_command,
    wheelhouse_command,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SECRET = "sk-fake-secret-123"
OWNER = "some_user"


def _clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The current environment without any KAGGLE_* variable, with HOME in a temporary folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_") and k != "XDG_CONFIG_HOME"}
    return {**env, "HOME": str(home), **extra}


@pytest.fixture
def no_credentials(tmp_path, monkeypatch):
    """No kaggle credential anywhere: empty HOME, no KAGGLE_* variables."""
    for key in [k for k in os.environ if k.startswith("KAGGLE_")] + ["XDG_CONFIG_HOME"]:
        monkeypatch.delenv(key, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def forbid_subprocess(monkeypatch):
    """Fail the test if anything starts a process."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(datasets.subprocess, "run", refuse)


@pytest.fixture
def dataset_folder(tmp_path):
    folder = tmp_path / "arc24-model"
    (folder / "adapter").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "adapter" / "adapter_config.json").write_text("{}")
    write_metadata(folder, dataset_metadata(OWNER, "arc24-model", "arc24 model"))
    return folder


def _snapshot(folder: Path) -> dict[str, tuple[float, bytes]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime, p.read_bytes()) for p in folder.rglob("*") if p.is_file()}


# --- dataset metadata -----------------------------------------------------------------------------------


def test_dataset_metadata_is_valid():
    for license_name in ("apache-2.0", "CC0-1.0"):
        meta = dataset_metadata(OWNER, "arc24-library", "arc24 library", license_name, "a wheel")
        assert validate_dataset_metadata(meta) == []
        assert meta["licenses"] == [{"name": license_name}] and meta["id"] == f"{OWNER}/arc24-library"


@pytest.mark.parametrize("change, expected", [
    ({"id": f"{OWNER}/arc24"}, "6 to 50"),                      # slug of 5 characters
    ({"id": f"{OWNER}/{'a' * 51}"}, "6 to 50"),
    ({"id": f"{OWNER}/Arc24-library"}, "lowercase"),
    ({"id": f"{OWNER}/arc24_library"}, "lowercase"),           # underscores only in owners
    ({"id": f"{OWNER}/arc24--library"}, "lowercase"),
    ({"id": "Some User/arc24-library"}, "owner"),
    ({"id": "arc24-library"}, "owner/slug"),
    ({"id": f"{OWNER}/INSERT_SLUG_HERE"}, "INSERT_SLUG_HERE"),
    ({"title": "arc24"}, "6 to 50"),
    ({"title": "x" * 51}, "6 to 50"),
    ({"title": "INSERT_TITLE_HERE"}, "INSERT_TITLE_HERE"),
    ({"licenses": [{"name": "CC0-1.0"}, {"name": "apache-2.0"}]}, "exactly one license"),
    ({"licenses": []}, "exactly one license"),
    ({"licenses": [{"name": "Apache 2.0"}]}, "not one of Kaggle's"),  # the model spelling, not the dataset one
    ({"subtitle": "too short"}, "20 to 80"),
])
def test_validate_dataset_metadata_catches(change, expected):
    meta = {**dataset_metadata(OWNER, "arc24-library", "arc24 library"), **change}
    problems = validate_dataset_metadata(meta)
    assert problems and any(expected in p for p in problems), problems


@pytest.mark.parametrize("key", ["id", "title", "licenses"])
def test_validate_dataset_metadata_requires(key):
    meta = dataset_metadata(OWNER, "arc24-library", "arc24 library")
    del meta[key]
    assert any(key in p for p in validate_dataset_metadata(meta))


def test_write_metadata_refuses_invalid(tmp_path):
    with pytest.raises(ValueError, match="6 to 50"):
        write_metadata(tmp_path, dataset_metadata(OWNER, "short", "arc24 library"))
    assert not (tmp_path / DATASET_METADATA_FILE).exists()


# --- kernel metadata --------------------------------------------------------------------------------------


def _kernel(**change):
    meta = kernel_metadata(OWNER, "arc24-submission", "arc24 submission", "submission.ipynb", "arc-prize-2025",
                           [f"{OWNER}/arc24-library", f"{OWNER}/arc24-model"])
    return {**meta, **change}


def test_kernel_metadata_is_valid(tmp_path):
    (tmp_path / "submission.ipynb").write_text("{}")
    meta = _kernel()
    assert validate_kernel_metadata(meta, tmp_path) == []
    assert meta["kernel_type"] == "notebook" and meta["language"] == "python"
    assert meta["enable_internet"] is False and meta["enable_gpu"] is True and meta["is_private"] is True
    assert meta["competition_sources"] == ["arc-prize-2025"]
    write_metadata(tmp_path, meta, "kernel")
    assert json.loads((tmp_path / "kernel-metadata.json").read_text()) == meta


@pytest.mark.parametrize("change, expected", [
    ({"title": "arc24 final submission"}, "slugifies"),
    ({"title": "arc"}, "at least 5"),
    ({"id": f"{OWNER}/arc24-submission/3"}, "no version"),
    ({"id": f"{OWNER}/Arc24_Submission"}, "lowercase"),
    ({"code_file": ""}, "code_file"),
    ({"code_file": "submission.py"}, ".ipynb"),
    ({"language": "julia"}, "language"),
    ({"kernel_type": "app"}, "kernel_type"),
    ({"enable_internet": True}, "enable_internet"),
    ({"competition_sources": []}, "competition_sources"),
    ({"dataset_sources": ["arc24-library"]}, "dataset source"),
    ({"model_sources": [f"{OWNER}/arc24/transformers/default"]}, "model source"),
    ({"enable_gpu": "yes"}, "true or false"),
    ({"machine_shape": "TpuV5E8"}, "is a TPU"),
    ({"machine_shape": "NvidiaL4x4"}, "did you mean 'NvidiaL4"),
    ({"machine_shape": "NvidiaL4", "enable_gpu": False}, "needs enable_gpu"),
])
def test_validate_kernel_metadata_catches(change, expected):
    problems = validate_kernel_metadata(_kernel(**change))
    assert problems and any(expected in p for p in problems), problems


def test_validate_kernel_metadata_needs_internet_off_explicitly():
    meta = _kernel()
    del meta["enable_internet"]  # the kaggle CLI turns internet on when the key is missing
    assert any("enable_internet" in p for p in validate_kernel_metadata(meta))


def test_validate_kernel_metadata_needs_code_file_in_folder(tmp_path):
    problems = validate_kernel_metadata(_kernel(), tmp_path)
    assert any("is not in" in p for p in problems), problems
    with pytest.raises(ValueError, match="submission.ipynb"):
        write_metadata(tmp_path, _kernel(), "kernel")


# --- push commands, dry runs, credentials -----------------------------------------------------------------


def test_push_commands_zip_subfolders_and_create_or_version():
    assert push_commands("d", "dataset") == [["kaggle", "datasets", "create", "-p", "d", "--dir-mode", "zip"]]
    assert push_commands("d", "dataset", public=True)[0][-1] == "--public"
    assert push_commands("d", "dataset", new=False, message="v2") == [
        ["kaggle", "datasets", "version", "-p", "d", "-m", "v2", "--dir-mode", "zip"]]
    assert push_commands("k", "kernel") == [["kaggle", "kernels", "push", "-p", "k"]]
    instance = f"{OWNER}/arc24/transformers/default"
    assert push_commands("m", "model", new=False, message="v2", model_instance=instance) == [
        ["kaggle", "models", "instances", "versions", "create", instance, "-p", "m", "-n", "v2", "--dir-mode", "zip"]]


@pytest.mark.parametrize("kind, kwargs", [("model", {}), ("model", {"new": False}), ("notebook", {})])
def test_push_commands_reject(kind, kwargs):
    with pytest.raises(ValueError, match="model_instance|not one of"):
        push_commands("m", kind, **kwargs)


def test_push_dry_run_runs_nothing(dataset_folder, forbid_subprocess, no_credentials):
    before = _snapshot(dataset_folder)
    plan = push(dataset_folder, "dataset", dry_run=True)
    assert plan.ran is False and plan.commands == push_commands(dataset_folder, "dataset")
    assert plan.metadata == json.loads((dataset_folder / "dataset-metadata.json").read_text())
    assert _snapshot(dataset_folder) == before


def test_push_checks_metadata_before_anything(dataset_folder, forbid_subprocess):
    (dataset_folder / "dataset-metadata.json").write_text(json.dumps(dataset_metadata(OWNER, "INSERT_SLUG_HERE",
                                                                                     "arc24 model")))
    with pytest.raises(ValueError, match="INSERT_SLUG_HERE"):
        push(dataset_folder, "dataset", dry_run=True)
    with pytest.raises(ValueError, match="no dataset-metadata.json"):
        push(dataset_folder / "adapter", "dataset")


def test_push_without_credentials_fails_clearly(dataset_folder, no_credentials, forbid_subprocess, monkeypatch):
    monkeypatch.setenv("KAGGLE_KEY", SECRET)  # a key without a username is not a credential
    assert credential_sources() == []
    with pytest.raises(RuntimeError, match="KAGGLE_API_TOKEN") as error:
        push(dataset_folder, "dataset", dry_run=False)
    assert SECRET not in str(error.value) and "--dry-run" in str(error.value)


def test_credential_sources_names_never_values(no_credentials, monkeypatch):
    monkeypatch.setenv("KAGGLE_API_TOKEN", SECRET)
    (no_credentials / ".kaggle").mkdir()
    (no_credentials / ".kaggle" / "kaggle.json").write_text(json.dumps({"username": "u", "key": SECRET}))
    found = credential_sources()
    assert found == ["KAGGLE_API_TOKEN", str(no_credentials / ".kaggle" / "kaggle.json")]
    assert SECRET not in repr(found)


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "arc24_lib.kaggle", *args], capture_output=True, text=True,
                          env=env, cwd=REPO_ROOT, timeout=120)


def test_cli_push_dry_run_prints_commands_and_no_secret(dataset_folder, tmp_path):
    env = _clean_env(tmp_path, KAGGLE_KEY=SECRET, KAGGLE_USERNAME=OWNER, KAGGLE_API_TOKEN=SECRET)
    before = _snapshot(dataset_folder)
    result = _cli(["push", str(dataset_folder), "--dry-run"], env)
    assert result.returncode == 0, result.stderr
    assert f"$ kaggle datasets create -p {dataset_folder} --dir-mode zip" in result.stdout
    assert f'"id": "{OWNER}/arc24-model"' in result.stdout and "dry run" in result.stdout
    assert SECRET not in result.stdout + result.stderr
    assert _snapshot(dataset_folder) == before
    version = _cli(["push", str(dataset_folder), "--version", "new weights", "--dry-run"], env)
    assert "datasets version" in version.stdout and SECRET not in version.stdout + version.stderr


def test_cli_push_without_credentials_exits_with_help(dataset_folder, tmp_path):
    result = _cli(["push", str(dataset_folder)], _clean_env(tmp_path / "home", KAGGLE_KEY=SECRET))
    assert result.returncode != 0
    assert "no Kaggle credentials" in result.stderr and "KAGGLE_API_TOKEN" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_cli_help_is_instant_and_imports_nothing_heavy():
    code = ("import sys, arc24_lib.kaggle.datasets; "
            "heavy = {'kaggle', 'slugify', 'torch', 'numpy'} & set(sys.modules); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, timeout=60)
    result = subprocess.run([sys.executable, "-m", "arc24_lib.kaggle", "--help"], capture_output=True, text=True,
                            cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 0 and "build-wheelhouse" in result.stdout


def test_kaggle_cli_runs_without_credentials(tmp_path):
    executable = Path(sys.executable).parent / "kaggle"
    result = subprocess.run([str(executable), "--version"], capture_output=True, text=True,
                            env=_clean_env(tmp_path), timeout=120)
    assert result.returncode == 0 and "Kaggle CLI" in result.stdout, result.stderr


# --- building the folders ---------------------------------------------------------------------------------


def test_build_library_dataset_makes_a_wheel(tmp_path):
    result = build_library_dataset(tmp_path / "lib", OWNER)
    wheels = list((tmp_path / "lib").glob("arc24-*.whl"))
    assert len(wheels) == 1 and result.command[:4] == [sys.executable, "-m", "pip", "wheel"]
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "arc24_lib/data.py" in names and "arc24_lib/kaggle/datasets.py" in names
    assert not any("__pycache__" in name for name in names)
    assert validate_dataset_metadata(json.loads((tmp_path / "lib" / "dataset-metadata.json").read_text())) == []


def test_build_model_dataset_copies_subfolders(tmp_path):
    model = tmp_path / "model"
    (model / "adapter").mkdir(parents=True)
    (model / "checkpoint-10").mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"\x00" * 64)
    (model / "adapter" / "adapter_model.safetensors").write_bytes(b"\x01" * 32)
    (model / "checkpoint-10" / "optimizer.pt").write_bytes(b"\x02")
    out = tmp_path / "kaggle_datasets" / "arc24-model"
    result = build_model_dataset(model, out, OWNER)
    assert (out / "adapter" / "adapter_model.safetensors").read_bytes() == b"\x01" * 32
    assert (out / "model.safetensors").is_file() and not (out / "checkpoint-10").exists()
    assert result.metadata["id"] == f"{OWNER}/arc24-model"
    assert push_commands(out, "dataset")[0][-2:] == ["--dir-mode", "zip"]
    (out / "stale.bin").write_bytes(b"old")
    build_model_dataset(model, out, OWNER)  # a rebuild replaces the earlier build
    assert not (out / "stale.bin").exists() and (out / "adapter").is_dir()


def test_build_model_dataset_refuses_foreign_or_empty_folders(tmp_path):
    (tmp_path / "model").mkdir()
    with pytest.raises(ValueError, match="missing or empty"):
        build_model_dataset(tmp_path / "model", tmp_path / "out", OWNER)
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        build_model_dataset(tmp_path / "model", tmp_path / "mine", OWNER)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_wheelhouse_command_flags(tmp_path):
    command = wheelhouse_command("req.txt", tmp_path, "3.12", ["manylinux_2_35_x86_64", "manylinux2014_x86_64"])
    assert command[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--only-binary=:all:" in command and "--no-deps" not in command
    text = " ".join(command)
    assert "--python-version 3.12 --implementation cp" in text
    assert "--platform manylinux_2_35_x86_64 --platform manylinux2014_x86_64" in text
    assert f"-r req.txt -d {tmp_path}" in text
    default = wheelhouse_command("req.txt", tmp_path, no_deps=True)
    assert default[-1] == "--no-deps" and default[default.index("--python-version") + 1] == "3.12"  # Kaggle's now
    assert [default[i + 1] for i, a in enumerate(default) if a == "--platform"] == list(KAGGLE_PLATFORMS)
    with pytest.raises(ValueError, match="platforms"):
        wheelhouse_command("req.txt", tmp_path, platforms=[])


def test_build_wheelhouse_dry_run_downloads_nothing(tmp_path, forbid_subprocess):
    result = build_wheelhouse_dataset(tmp_path / "wheels", OWNER, dry_run=True)
    assert result.dry_run and not (tmp_path / "wheels").exists()
    assert result.command[result.command.index("-r") + 1] == str(REPO_ROOT / "requirements-gpu.txt")


def test_build_wheelhouse_downloads_a_wheel(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("six==1.17.0\n")
    out = tmp_path / "arc24-wheelhouse"
    build_wheelhouse_dataset(out, OWNER, requirements=requirements, no_deps=True)
    assert (out / "six-1.17.0-py2.py3-none-any.whl").is_file()
    assert (out / "requirements.txt").read_text() == "six==1.17.0\n"
    assert validate_dataset_metadata(json.loads((out / "dataset-metadata.json").read_text())) == []


# --- Kaggle's platform, accelerators, the kernel folder, resolving the wheelhouse ---------------------------


def test_the_platforms_are_every_manylinux_tag_of_kaggles_glibc():
    # pip does not widen an explicit --platform: the old list (2_35, 2_31, 2_28, 2_17, 2014) found no wheel of
    # torch 2.14's CUDA libraries (manylinux_2_27, 2_25, 2_18)
    minors = [int(tag.split("_")[2]) for tag in KAGGLE_PLATFORMS if tag.startswith("manylinux_2_")]
    assert minors == list(range(35, 4, -1))
    assert {"manylinux_2_27_x86_64", "manylinux_2_25_x86_64", "manylinux_2_18_x86_64", "manylinux_2_31_x86_64",
            "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"} <= set(KAGGLE_PLATFORMS)
    assert KAGGLE_PLATFORMS.index("manylinux2014_x86_64") == KAGGLE_PLATFORMS.index("manylinux_2_17_x86_64") + 1
    assert manylinux_platforms((2, 28), "aarch64")[0] == "manylinux_2_28_aarch64"


@pytest.mark.parametrize("name", ["NvidiaTeslaT4", "NvidiaL4", "NvidiaL4X1", "NvidiaH100", "NvidiaTeslaP100"])
def test_the_kaggle_clis_gpu_machine_shapes_are_accepted(name):
    assert accelerator_problems(name) == []
    assert validate_kernel_metadata(_kernel(machine_shape=name)) == []


def test_build_kernel_writes_the_notebook_and_its_metadata(tmp_path, forbid_subprocess, no_credentials):
    result = build_kernel(tmp_path / "kernel", OWNER, accelerator="NvidiaL4")
    meta = json.loads((tmp_path / "kernel" / "kernel-metadata.json").read_text())
    assert meta == result.metadata and meta["machine_shape"] == "NvidiaL4" and meta["enable_internet"] is False
    assert meta["dataset_sources"] == [f"{OWNER}/arc24-library", f"{OWNER}/arc24-model", f"{OWNER}/arc24-wheelhouse"]
    assert (tmp_path / "kernel" / "kaggle_submission.ipynb").read_bytes() == \
        (REPO_ROOT / "notebooks" / "kaggle_submission.ipynb").read_bytes()
    plan = push(tmp_path / "kernel", "kernel", dry_run=True, accelerator="NvidiaTeslaT4")
    assert plan.commands == [["kaggle", "kernels", "push", "-p", str(tmp_path / "kernel"), "--accelerator",
                              "NvidiaTeslaT4"]]
    with pytest.raises(ValueError, match="TPU"):
        build_kernel(tmp_path / "other", OWNER, accelerator="TpuV6E8")
    with pytest.raises(ValueError, match="did you mean 'NvidiaTeslaT4'"):
        push(tmp_path / "kernel", "kernel", dry_run=True, accelerator="NvidiaTeslaT5")
    with pytest.raises(ValueError, match="kernel only"):
        push(tmp_path / "kernel", "dataset", dry_run=True, accelerator="NvidiaL4")


def test_cli_builds_and_dry_runs_a_kernel_push_on_an_accelerator(tmp_path):
    env = _clean_env(tmp_path)
    built = _cli(["build-kernel", "--owner", OWNER, "--accelerator", "NvidiaL4", "--output-dir",
                  str(tmp_path / "kernel")], env)
    assert built.returncode == 0, built.stderr
    pushed = _cli(["push", str(tmp_path / "kernel"), "--kind", "kernel", "--accelerator", "NvidiaL4", "--dry-run"], env)
    assert f"$ kaggle kernels push -p {tmp_path / 'kernel'} --accelerator NvidiaL4" in pushed.stdout, pushed.stderr
    refused = _cli(["build-kernel", "--owner", OWNER, "--accelerator", "T4x2", "--output-dir", str(tmp_path / "x")],
                   env)
    assert refused.returncode != 0 and "NvidiaTeslaT4" in refused.stderr


def test_a_wheelhouse_needs_a_self_contained_requirements_file(tmp_path):
    (tmp_path / "requirements.txt").write_text("-r base.txt\nvllm==0.33.0\n")
    with pytest.raises(ValueError, match="requirements.txt:1: '-r base.txt' includes another file"):
        requirements_file(tmp_path / "requirements.txt")
    gpu = requirements_file("requirements-gpu.txt")
    assert gpu == REPO_ROOT / "requirements-gpu.txt"
    pins = pinned_requirements(gpu)  # the default cu12 set
    assert pins["vllm"] == "0.19.1" and pins["torch"] == "2.10.0" and pins["numpy"].startswith("2.2")


def test_the_resolver_command_downloads_nothing_for_kaggles_python(tmp_path):
    command = resolve_command("requirements-gpu.txt", tmp_path / "report.json")
    assert command[3:6] == ["install", "--dry-run", "--ignore-installed"] and "--only-binary=:all:" in command
    assert command[command.index("--python-version") + 1] == "3.12"
    assert [command[i + 1] for i, a in enumerate(command) if a == "--platform"] == list(KAGGLE_PLATFORMS)
    assert command[command.index("--report") + 1] == str(tmp_path / "report.json")
