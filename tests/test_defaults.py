"""One source for every default: the bench, the notebooks and the Kaggle run use the library's stage
configs, field by field, except for the short lists of differences they state (and say why)."""

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from arc24_lib.inference.airv import InferenceConfig
from arc24_lib.kaggle_run import KAGGLE_DIFFERENCES, KaggleRunConfig
from arc24_lib.notebooks import (
    DataParameters,
    EvaluationParameters,
    OutputParameters,
    StageParameters,
    notebook_parameters,
    parameters_cell,
)
from arc24_lib.solve import SolveConfig, follow_training
from arc24_lib.test_time import TestTimeConfig
from arc24_lib.training import FineTuningConfig

BENCH = Path(__file__).resolve().parent.parent / "bench" / "tiny_tasks.py"
# the notebooks' stage settings that differ from the library's, and why
NOTEBOOK_DIFFERENCES = {
    "01_data": set(),
    "02_fine_tuning": {"max_steps"},  # a short run to look at, not a real fine-tuning
    "03_test_time_fine_tuning": {"time_budget_s"},  # the stage notebook has no per-task budget of its own
    "04_inference": set(),
}
# the Kaggle notebook's install step reads these before the library is installed: its cell must hold them
KAGGLE_INSTALL_PARAMETERS = {"competition", "challenges_path", "submission_path", "model_path", "expect_gpu"}
NOTEBOOK_CONFIGS = {"01_data": (DataParameters, TestTimeConfig), "02_fine_tuning": (OutputParameters, FineTuningConfig),
                    "03_test_time_fine_tuning": (StageParameters, TestTimeConfig),
                    "04_inference": (StageParameters, InferenceConfig)}


def differences(ours, theirs, prefix=""):
    """Dotted names of the fields whose values differ, nested configs compared field by field."""
    names = set()
    for field in dataclasses.fields(ours):
        mine, other = getattr(ours, field.name), getattr(theirs, field.name)
        if dataclasses.is_dataclass(mine) and dataclasses.is_dataclass(other):
            names |= differences(mine, other, f"{prefix}{field.name}.")
        elif mine != other:
            names.add(prefix + field.name)
    return names


def flat_names(nested, prefix=""):
    return {f"{prefix}{k}" for k, v in nested.items() if not isinstance(v, dict)} | {
        name for k, v in nested.items() if isinstance(v, dict) for name in flat_names(v, f"{prefix}{k}.")}


def test_differences_sees_nested_fields():
    changed = dataclasses.replace(TestTimeConfig(), lora_r=8, augmentation=dataclasses.replace(
        TestTimeConfig().augmentation, keep_rule_colors=False))
    assert differences(changed, TestTimeConfig()) == {"lora_r", "augmentation.keep_rule_colors"}
    assert flat_names({"a": 1, "b": {"c": 2, "d": {"e": 3}}}) == {"a", "b.c", "b.d.e"}


def test_the_bench_uses_the_librarys_defaults_but_for_its_stated_differences():
    spec = importlib.util.spec_from_file_location("tiny_tasks", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    config = bench.bench_config(vars(bench.bench_parser().parse_args([])), "out")
    library = SolveConfig().with_output_dir("out")
    assert differences(config, library) == flat_names(bench.BENCH_DIFFERENCES)
    # a flag changes its field, and only its field
    changed = bench.bench_config(vars(bench.bench_parser().parse_args(
        ["--test_time.random_seed", "8", "--no-test_time.augmentation.keep_rule_colors"])), "out")
    assert differences(changed, config) == {"test_time.random_seed", "test_time.augmentation.keep_rule_colors",
                                            "inference.augmentation.keep_rule_colors"}  # inference follows training
    with pytest.raises(SystemExit):  # inference's followed settings are not flags: they come from training
        bench.bench_parser().parse_args(["--inference.grid_encoder", "x"])


@pytest.mark.parametrize("name", sorted(NOTEBOOK_DIFFERENCES))
def test_each_notebook_sets_its_own_parameters_and_only_the_stated_stage_differences(name):
    own, stage = NOTEBOOK_CONFIGS[name]
    cell = parameters_cell(name)
    own_names = {field.name for field in dataclasses.fields(own)}
    assert own_names <= set(cell)
    stage_values = {key: value for key, value in cell.items() if key not in own_names}
    assert set(stage_values) <= {field.name for field in dataclasses.fields(stage)}
    defaults = stage()
    # only what the notebook changes: no default repeated
    assert set(stage_values) == NOTEBOOK_DIFFERENCES[name]
    assert all(value != getattr(defaults, key) for key, value in stage_values.items())
    assert set(parameters_cell("05_evaluation")) == {field.name for field in dataclasses.fields(EvaluationParameters)}


def test_kaggle_defaults_are_the_librarys_but_for_the_stated_differences():
    kaggle = KaggleRunConfig()
    assert differences(kaggle.test_time, TestTimeConfig()) == set(KAGGLE_DIFFERENCES["test_time"])
    assert differences(kaggle.inference, InferenceConfig()) == set(KAGGLE_DIFFERENCES["inference"])
    # the Kaggle notebook's cell holds only what its install step reads before the library is there (those of
    # the run's fields at their defaults); binding it gives the run's defaults for every other field
    cell = parameters_cell("kaggle_submission")
    defaults = {field.name: getattr(kaggle, field.name) for field in dataclasses.fields(KaggleRunConfig)}
    assert set(cell) == KAGGLE_INSTALL_PARAMETERS | {"library_dir", "wheelhouse_dir"}
    assert {k: cell[k] for k in KAGGLE_INSTALL_PARAMETERS} == {k: defaults[k] for k in KAGGLE_INSTALL_PARAMETERS}
    assert notebook_parameters(dict(cell), KaggleRunConfig, ignore=("library_dir", "wheelhouse_dir")) == kaggle
    changed = notebook_parameters({**cell, "run_mode": "full", "inference": {"generator": "dfs"}}, KaggleRunConfig,
                                  ignore=("library_dir", "wheelhouse_dir"))
    assert differences(changed, kaggle) == {"run_mode", "inference.generator"}
    with pytest.raises(ValueError, match="run_mod"):
        notebook_parameters({**cell, "run_mod": "full"}, KaggleRunConfig, ignore=("library_dir", "wheelhouse_dir"))


def test_inference_follows_test_time_training_by_construction():
    test_time = dataclasses.replace(TestTimeConfig(), grid_encoder="RowNumberEncoder(MinimalGridEncoder())",
                                    augmentation=dataclasses.replace(TestTimeConfig().augmentation,
                                                                     permute_colors=False))
    solve = SolveConfig(test_time=test_time)
    assert solve.inference.grid_encoder == test_time.grid_encoder and solve.inference.augmentation == \
        test_time.augmentation and solve.inference.adapters_dir == test_time.output_dir
    with pytest.raises(ValueError, match="inference.prompt_version is .*set prompt_version in the test-time config"):
        follow_training(InferenceConfig(prompt_version="output-from-examples-v1"), TestTimeConfig())
    assert SolveConfig(test_time=None, inference=InferenceConfig(prompt_version="output-from-examples-v1"))
