"""One source for every default: the bench, the notebooks and the Kaggle run use the library's stage
configs, field by field, except for the short lists of differences they state (and say why)."""

import dataclasses
import importlib.util
import itertools
from pathlib import Path

import pytest

from arc24_lib.inference.airv import InferenceConfig
from arc24_lib.kaggle.run import KAGGLE_DIFFERENCES, KaggleRunConfig
from arc24_lib.notebooks import (
    DataParameters,
    EvaluationParameters,
    OutputParameters,
    StageParameters,
    notebook_parameters,
    parameters_cell,
)
from arc24_lib.planning import Pace
from arc24_lib.solve import SolveConfig
from arc24_lib.task_format import TaskFormat
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
KAGGLE_INSTALL_PARAMETERS = {"competition", "challenges_path", "submission_path", "task_format", "expect_gpu"}
NOTEBOOK_CONFIGS = {"01_data": (DataParameters, TaskFormat, TestTimeConfig),
                    "02_fine_tuning": (OutputParameters, FineTuningConfig),
                    "03_test_time_fine_tuning": (StageParameters, TaskFormat, TestTimeConfig),
                    "04_inference": (StageParameters, TaskFormat, InferenceConfig)}


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
    changed = dataclasses.replace(SolveConfig(), budget_s=60.0, task_format=dataclasses.replace(
        TaskFormat(), augmentation=dataclasses.replace(TaskFormat().augmentation, keep_rule_colors=False)))
    assert differences(changed, SolveConfig()) == {"budget_s", "task_format.augmentation.keep_rule_colors"}
    assert flat_names({"a": 1, "b": {"c": 2, "d": {"e": 3}}}) == {"a", "b.c", "b.d.e"}


def test_the_bench_uses_the_librarys_defaults_but_for_its_stated_differences():
    spec = importlib.util.spec_from_file_location("tiny_tasks", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    config = bench.bench_config(vars(bench.bench_parser().parse_args([])), "out")
    library = SolveConfig().with_output_dir("out")
    assert differences(config, library) == flat_names(bench.BENCH_DIFFERENCES)
    # a flag changes its field, and only its field; the task format is one field that both stages read
    changed = bench.bench_config(vars(bench.bench_parser().parse_args(
        ["--test_time.random_seed", "8", "--no-task_format.augmentation.keep_rule_colors"])), "out")
    assert differences(changed, config) == {"test_time.random_seed", "task_format.augmentation.keep_rule_colors"}
    for stage in ("test_time", "inference"):  # no stage has a format of its own to set
        with pytest.raises(SystemExit):
            bench.bench_parser().parse_args([f"--{stage}.grid_encoder", "x"])


@pytest.mark.parametrize("name", sorted(NOTEBOOK_DIFFERENCES))
def test_each_notebook_sets_its_own_parameters_and_only_the_stated_stage_differences(name):
    own, *stages = NOTEBOOK_CONFIGS[name]
    cell = parameters_cell(name)
    own_names = {field.name for field in dataclasses.fields(own)}
    assert own_names <= set(cell)
    stage_values = {key: value for key, value in cell.items() if key not in own_names}
    defaults = {field.name: getattr(stage(), field.name) for stage in stages for field in dataclasses.fields(stage)}
    assert set(stage_values) <= set(defaults)
    # only what the notebook changes: no default repeated
    assert set(stage_values) == NOTEBOOK_DIFFERENCES[name]
    assert all(value != defaults[key] for key, value in stage_values.items())
    assert set(parameters_cell("05_evaluation")) == {field.name for field in dataclasses.fields(EvaluationParameters)}


def test_kaggle_defaults_are_the_librarys_but_for_the_stated_differences():
    kaggle = KaggleRunConfig()
    assert differences(kaggle.task_format, TaskFormat()) == set(KAGGLE_DIFFERENCES["task_format"])
    assert differences(kaggle.test_time, TestTimeConfig()) == set(KAGGLE_DIFFERENCES["test_time"])
    assert differences(kaggle.inference, InferenceConfig()) == set(KAGGLE_DIFFERENCES["inference"])
    assert differences(kaggle.pace, Pace()) == set(KAGGLE_DIFFERENCES["pace"])
    # the Kaggle notebook's cell holds only what its install step reads before the library is there (those of
    # the run's fields at their defaults); binding it gives the run's defaults for every other field
    cell = parameters_cell("kaggle_submission")
    defaults = {field.name: getattr(kaggle, field.name) for field in dataclasses.fields(KaggleRunConfig)}
    assert set(cell) == KAGGLE_INSTALL_PARAMETERS | {"library_dir", "wheelhouse_dir"}
    assert {k: cell[k] for k in KAGGLE_INSTALL_PARAMETERS - {"task_format"}} == {
        k: defaults[k] for k in KAGGLE_INSTALL_PARAMETERS - {"task_format"}}
    assert cell["task_format"] == KAGGLE_DIFFERENCES["task_format"]  # the model path the install step checks
    assert notebook_parameters(dict(cell), KaggleRunConfig, ignore=("library_dir", "wheelhouse_dir")) == kaggle
    changed = notebook_parameters({**cell, "run_mode": "full", "inference": {"generator": "dfs"}}, KaggleRunConfig,
                                  ignore=("library_dir", "wheelhouse_dir"))
    assert differences(changed, kaggle) == {"run_mode", "inference.generator"}
    with pytest.raises(ValueError, match="run_mod"):
        notebook_parameters({**cell, "run_mod": "full"}, KaggleRunConfig, ignore=("library_dir", "wheelhouse_dir"))


def test_one_task_format_is_read_by_both_stages(arc1_training, smollm2_tokenizer):
    """Changing the format's encoder changes what test-time training trains on and what inference prompts with:
    one value, two readers."""
    from arc24_lib.inference.airv import plan_predictions
    from arc24_lib.test_time import task_samples

    task, other = arc1_training["6150a2bd"], "GridShapeEncoder(GridWithSeparationEncoder('|'))"
    for grid_encoder in (TaskFormat().grid_encoder, other):
        config = SolveConfig(task_format=TaskFormat(grid_encoder=grid_encoder, augmentation=dataclasses.replace(
            TaskFormat().augmentation, geometric=False, permute_colors=False, shuffle_train_pairs=False,
            swap_train_and_test=False)))  # samples in the task's own form, so its grid text shows as written
        shown = config.task_format.encoder.to_text(task.train[0].input)
        sample = next(itertools.islice(iter(task_samples([task], config.test_time, config.task_format,
                                                         smollm2_tokenizer)), 1))
        assert shown in smollm2_tokenizer.decode(sample["input_ids"])
        prompts = [p.prompt for p in plan_predictions(task.without_solutions(), config.inference, config.task_format,
                                                      smollm2_tokenizer)]
        assert prompts and all(shown in prompt for prompt in prompts)
    assert "|" in shown  # the other encoder's text, which the default does not write


def test_a_format_that_conflicts_between_the_stages_cannot_be_expressed(tmp_path):
    from arc24_lib.config import config_from_dict
    from arc24_lib.task_format import FORMAT_FILE, adapters_format

    format_names = {field.name for field in dataclasses.fields(TaskFormat)}
    for stage in (TestTimeConfig, InferenceConfig, KaggleRunConfig):  # the format's fields have one home
        assert not format_names & {field.name for field in dataclasses.fields(stage)}
    with pytest.raises(ValueError, match="unknown InferenceConfig field.*'prompt_version'"):
        config_from_dict(SolveConfig, {"inference": {"prompt_version": "output-from-examples-v1"}})
    with pytest.raises(ValueError, match="unknown KaggleRunConfig field.*'model_path'"):
        config_from_dict(KaggleRunConfig, {"model_path": "/kaggle/input/other"})  # the model is the format's
    with pytest.raises(ValueError, match="prompt version"):
        TaskFormat(prompt_version="v9")
    with pytest.raises(ValueError):
        TaskFormat(grid_encoder="NoSuchEncoder()")  # a bad encoder fails before any stage starts
    # a later stage reads the format beside the adapters; a different one given to it is refused
    trained = TaskFormat(prompt_version="output-from-examples-v1")
    trained.save(tmp_path)
    assert (tmp_path / FORMAT_FILE).exists()
    assert adapters_format(tmp_path) == adapters_format(tmp_path, TaskFormat()) == trained
    assert adapters_format(tmp_path / "none", None) == TaskFormat()
    assert adapters_format(tmp_path, TaskFormat(prompt_version="output-from-examples-v1")) == trained
    assert adapters_format(tmp_path, TaskFormat(model_path=trained.model_path)) == trained  # the rest: saved
    with pytest.raises(ValueError, match="prompt_version differ"):
        adapters_format(tmp_path, TaskFormat(prompt_version="output-from-examples-v0"))

