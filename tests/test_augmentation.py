"""Tests for arc24_lib.augmentation: exact round trips, sampling coverage, problem augmentation."""

import json
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from arc24_lib.augmentation import (
    GEOMETRY_NAMES,
    IDENTITY_COLOR_MAP,
    AugmentationConfig,
    TaskAugmentation,
    all_geometries,
    apply_geometry,
    augment_grid,
    augment_task,
    fixed_recoloring_colors,
    identity_augmentation,
    inference_augmentations,
    per_task_augmentation,
    permute_colors,
    revert_colors,
    revert_geometry,
    revert_grid,
    revert_task,
    rule_colors,
    sample_augmentation,
    sample_pool_task,
)
from arc24_lib.data import MAX_SIDE, Example, Task, load_builtin
from arc24_lib.problem_augmentation import (
    PROBLEM_KINDS,
    ProblemAugmentation,
    ProblemAugmentationConfig,
    apply_problem_augmentation,
    sample_problem_augmentation,
)

DATASETS = ("arc-agi-1/training", "arc-agi-1/evaluation", "arc-agi-2/training", "arc-agi-2/evaluation")


@pytest.fixture(scope="module")
def datasets():
    return {name: load_builtin(name) for name in DATASETS}


def grid_of(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 10, size=(rows, cols))


def make_task(n_train: int, n_test: int, solutions: bool = True, seed: int = 0) -> Task:
    rng = np.random.default_rng(seed)

    def pair(with_output: bool) -> Example:
        shape = tuple(rng.integers(1, 8, size=2))
        output = rng.integers(0, 10, size=shape) if with_output else None
        return Example(rng.integers(0, 10, size=shape), output)

    return Task("toy", [pair(True) for _ in range(n_train)], [pair(solutions) for _ in range(n_test)])


def assert_same_task(actual: Task, expected: Task) -> None:
    assert actual.task_id == expected.task_id and actual.n_train == expected.n_train
    assert len(actual.train) == len(expected.train) and len(actual.test) == len(expected.test)
    for got, want in zip(actual.examples, expected.examples, strict=True):
        assert np.array_equal(got.input, want.input)
        assert (got.output is None) == (want.output is None)
        assert want.output is None or np.array_equal(got.output, want.output)


# --- geometry and colours -----------------------------------------------------------------

@pytest.mark.parametrize("index", all_geometries())
def test_geometry_apply_revert_round_trip(index):
    for seed, shape in enumerate([(1, 1), (1, 7), (3, 5), (6, 2), (30, 30), (30, 11)]):
        grid = grid_of(*shape, seed)
        out = apply_geometry(grid, index)
        assert out.shape == (shape if index in (0, 2, 5, 7) else shape[::-1])
        assert np.array_equal(revert_geometry(out, index), grid)


def test_geometry_transforms_are_distinct():
    grid = np.arange(6).reshape(2, 3)
    results = {(apply_geometry(grid, i).shape, apply_geometry(grid, i).tobytes()) for i in all_geometries()}
    assert len(results) == len(GEOMETRY_NAMES) == 8
    assert np.array_equal(apply_geometry(grid, 4), grid.T)
    assert np.array_equal(apply_geometry(grid, 1), np.rot90(grid))


def test_geometry_bad_index_raises():
    with pytest.raises(ValueError, match="geometry"):
        apply_geometry(grid_of(2, 2), 8)


grids = st.tuples(st.integers(1, MAX_SIDE), st.integers(1, MAX_SIDE)).flatmap(
    lambda shape: arrays(np.int64, shape, elements=st.integers(0, 9)))


@settings(max_examples=100, deadline=None)
@given(grid=grids, index=st.integers(0, 7))
def test_geometry_round_trip_property(grid, index):
    assert np.array_equal(revert_geometry(apply_geometry(grid, index), index), grid)


@settings(max_examples=100, deadline=None)
@given(grid=grids, color_map=st.permutations(list(range(10))), index=st.integers(0, 7))
def test_colors_round_trip_property(grid, color_map, index):
    color_map = tuple(color_map)
    permuted = permute_colors(grid, color_map)
    assert all(permuted[pos] == color_map[value] for pos, value in np.ndenumerate(grid))
    assert np.array_equal(revert_colors(permuted, color_map), grid)
    augmentation = TaskAugmentation(index, color_map, (0,), (1,))
    assert np.array_equal(revert_grid(augment_grid(grid, augmentation), augmentation), grid)


# --- A1 round trip on every real task -----------------------------------------------------

@pytest.mark.parametrize("name", DATASETS)
def test_augment_revert_exact_on_every_task(datasets, name):
    rng = np.random.default_rng(DATASETS.index(name))
    config = AugmentationConfig(keep_background_probability=0.5)
    swaps = 0
    for task in datasets[name]:
        assert task.has_solutions
        for geometry in [*all_geometries(), *all_geometries()]:
            augmentation = replace(sample_augmentation(task, rng, config), geometry=geometry)
            swaps += augmentation.swaps_train_and_test
            augmented = augment_task(task, augmentation)
            assert_same_task(revert_task(augmented, augmentation), task)
            for position, example in zip(augmentation.test_order, augmented.test, strict=True):
                original = task.examples[position].output
                assert np.array_equal(revert_grid(example.output, augmentation), original)
    assert swaps > len(datasets[name])  # most samples really swap


def test_augment_task_applies_to_every_grid():
    task = make_task(3, 2)
    augmentation = TaskAugmentation(5, (0, 2, 1, 3, 4, 5, 6, 7, 9, 8), (2, 0, 1), (3, 4))
    augmented = augment_task(task, augmentation)
    assert augmented.task_id == task.task_id
    for example, position in zip(augmented.examples, (2, 0, 1, 3, 4), strict=True):
        assert np.array_equal(example.input, augment_grid(task.examples[position].input, augmentation))
        assert np.array_equal(example.output, augment_grid(task.examples[position].output, augmentation))


def test_augment_task_keeps_unknown_outputs_none():
    task = make_task(3, 2, solutions=False)
    augmentation = sample_augmentation(task, np.random.default_rng(0))
    assert not augmentation.swaps_train_and_test
    augmented = augment_task(task, augmentation)
    assert all(example.output is None for example in augmented.test)
    assert_same_task(revert_task(augmented, augmentation), task)


def test_swap_on_task_without_test_outputs_raises():
    task = make_task(3, 1, solutions=False)
    with pytest.raises(ValueError, match="swap"):
        augment_task(task, TaskAugmentation(0, IDENTITY_COLOR_MAP, (0, 1, 3), (2,)))


@pytest.mark.parametrize("n_train, n_test", [(4, 1), (5, 1), (2, 2), (3, 2)])
def test_swap_makes_every_example_the_test_sometimes(n_train, n_test):
    task = make_task(n_train, n_test)
    rng = np.random.default_rng(1)
    targets = Counter()
    for _ in range(200):
        augmentation = sample_augmentation(task, rng)
        targets.update(augmentation.test_order)
        assert len(augmentation.test_order) == n_test
    assert set(targets) == set(range(n_train + n_test))


def test_no_swap_keeps_test_pairs():
    task = make_task(4, 2)
    rng = np.random.default_rng(2)
    config = AugmentationConfig(swap_train_and_test=False)
    orders = set()
    for _ in range(50):
        augmentation = sample_augmentation(task, rng, config)
        assert augmentation.test_order == (4, 5) and not augmentation.swaps_train_and_test
        orders.add(augmentation.train_order)
    assert len(orders) > 1  # train pairs are shuffled


def test_keep_background_probability():
    task = make_task(2, 1)
    rng = np.random.default_rng(3)
    kept = [sample_augmentation(task, rng, AugmentationConfig()).color_map for _ in range(200)]
    moved = [sample_augmentation(task, rng, AugmentationConfig(keep_background_probability=0.0)).color_map
             for _ in range(200)]
    for color_map in kept + moved:
        assert sorted(color_map) == list(range(10))
    assert all(color_map[0] == 0 for color_map in kept)
    assert sum(color_map[0] != 0 for color_map in moved) > 100
    assert len(set(kept)) > 100


def test_rule_colors_are_in_every_output_and_no_input(datasets):
    tasks = datasets["arc-agi-1/training"]
    assert rule_colors(tasks["9565186b"]) == {5}  # the majority colour stays, the rest turns 5
    assert rule_colors(tasks["25d8a9c8"]) == {0, 5}  # uniform rows turn 5, the others 0
    assert rule_colors(tasks["74dd1130"]) == set()  # a transpose writes only the input's colours
    assert rule_colors(tasks["9565186b"].without_solutions()) == {5}  # the train outputs alone say so
    assert rule_colors(tasks["0d3d703e"]) == {1, 2, 3, 4, 5, 6, 8, 9}  # a fixed recolouring: 3→4, 1→5, 2→6, 8→9
    for task in tasks:  # the definition itself, on every task
        outputs = [set(ex.output.ravel().tolist()) for ex in task.examples]
        inputs = set().union(*(ex.input.ravel().tolist() for ex in task.examples))
        assert rule_colors(task) == set.intersection(*outputs) - inputs | fixed_recoloring_colors(task)


def _cellwise_recoloring(task):
    """The colour → colour map that turns every known input into its output cell by cell, or None."""
    recoloring = {}
    for example in task.examples:
        if example.output is None:
            continue
        if example.input.shape != example.output.shape:
            return None
        for source, target in zip(example.input.ravel().tolist(), example.output.ravel().tolist(), strict=True):
            if recoloring.setdefault(source, target) != target:
                return None
    return recoloring


def test_fixed_recoloring_colors_are_the_colours_a_cellwise_map_changes(datasets):
    tasks = datasets["arc-agi-1/training"]
    assert fixed_recoloring_colors(tasks["0d3d703e"].without_solutions()) == {1, 2, 3, 4, 5, 6, 8, 9}
    assert fixed_recoloring_colors(tasks["74dd1130"]) == set()  # a transpose moves cells
    assert fixed_recoloring_colors(tasks["25d8a9c8"]) == set()  # 4 turns 5 in one row and 0 in another
    found = set()
    for task in tasks:
        for known in (task, task.without_solutions()):
            recoloring = _cellwise_recoloring(known)
            changed = {c for s, t in (recoloring or {}).items() if s != t for c in (s, t)}
            assert fixed_recoloring_colors(known) == changed, known.task_id
            found |= {known.task_id} if changed else set()
    assert 3 <= len(found) <= 20  # a rare kind of task: 0d3d703e, b1948b0a, c8f0f002, d511f180, ...


def test_keep_rule_colors_fixes_them_and_permutes_the_rest(datasets):
    task = datasets["arc-agi-1/training"]["9565186b"]
    config, rng = AugmentationConfig(keep_rule_colors=True), np.random.default_rng(4)
    maps = [sample_augmentation(task, rng, config).color_map for _ in range(300)]
    assert all(m[0] == 0 and m[5] == 5 and sorted(m) == list(range(10)) for m in maps)
    for color in (1, 2, 3, 4, 6, 7, 8, 9):  # every other colour still goes everywhere else
        assert {m[color] for m in maps} == {1, 2, 3, 4, 6, 7, 8, 9}
    augmentations = inference_augmentations(task.without_solutions(), 8, rng, config)
    assert all(a.color_map[5] == 5 for a in augmentations)
    answer = task.test[0].output  # an answer in an augmented frame reverts exactly
    for augmentation in augmentations:
        assert np.array_equal(revert_grid(augment_grid(answer, augmentation), augmentation), answer)
    moved = [sample_augmentation(task, rng, AugmentationConfig()).color_map for _ in range(100)]
    assert sum(m[5] != 5 for m in moved) > 50  # off by default: 5 is permuted like any colour


def test_color_maps_without_rule_colors_draw_as_before():
    """The fixed-point sampler gives the maps (and rng stream) of a plain permutation of the free colours."""
    task = make_task(3, 1)
    assert rule_colors(task) == set()
    for keep, rule in ((1.0, False), (0.0, False), (1.0, True), (0.0, True)):
        config = AugmentationConfig(keep_background_probability=keep, keep_rule_colors=rule)
        ours, plain = np.random.default_rng(9), np.random.default_rng(9)
        for _ in range(20):
            drawn = sample_augmentation(task, ours, replace(config, geometric=False, shuffle_train_pairs=False,
                                                            swap_train_and_test=False)).color_map
            plain.random()  # the background draw
            expected = (0, *(plain.permutation(9) + 1)) if keep else tuple(plain.permutation(10))
            assert drawn == tuple(int(c) for c in expected)


def test_test_time_training_and_its_inference_share_one_augmentation_config():
    from arc24_lib.config import config_from_dict
    from arc24_lib.task_format import TaskFormat
    from arc24_lib.training import FineTuningConfig

    # rule colours kept and half the samples in the own frame where one task's adapter is trained and used
    # (the task format both stages read); fine-tuning over many tasks permutes every colour and draws every
    # frame alike
    assert TaskFormat().augmentation == per_task_augmentation()
    assert per_task_augmentation().keep_rule_colors and per_task_augmentation().own_frame_probability == 0.5
    assert FineTuningConfig().augmentation == AugmentationConfig()
    assert not AugmentationConfig().keep_rule_colors and AugmentationConfig().own_frame_probability == 0.0
    # a partial dict changes only the fields it names
    config = config_from_dict(TaskFormat, {"augmentation": {"keep_rule_colors": False}})
    assert config.augmentation == replace(per_task_augmentation(), keep_rule_colors=False)


def test_config_validation():
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="keep_background_probability"):
            AugmentationConfig(keep_background_probability=bad)


def test_task_augmentation_validation():
    with pytest.raises(ValueError, match="color_map"):
        TaskAugmentation(0, (0, 0, 1, 2, 3, 4, 5, 6, 7, 8), (0,), (1,))
    with pytest.raises(ValueError, match="permutation"):
        TaskAugmentation(0, IDENTITY_COLOR_MAP, (0, 0), (1,))
    with pytest.raises(ValueError, match="another shape"):
        augment_task(make_task(2, 1), TaskAugmentation(0, IDENTITY_COLOR_MAP, (0,), (1,)))


def test_to_dict_from_dict_round_trip():
    task = make_task(4, 2)
    rng = np.random.default_rng(4)
    for _ in range(20):
        augmentation = sample_augmentation(task, rng, AugmentationConfig(keep_background_probability=0.5))
        data = json.loads(json.dumps(augmentation.to_dict()))
        assert TaskAugmentation.from_dict(data) == augmentation
        assert str(augmentation) == augmentation.name and augmentation.name.startswith(
            GEOMETRY_NAMES[augmentation.geometry] + "|colors:")
    with pytest.raises(ValueError, match="unknown"):
        TaskAugmentation.from_dict({**augmentation.to_dict(), "rotate": 1})


def test_identity_augmentation_changes_nothing():
    task = make_task(3, 2)
    augmentation = identity_augmentation(task)
    assert augmentation.name == "identity|colors:0123456789|train:0,1,2|test:3,4"
    assert_same_task(augment_task(task, augmentation), task)


# --- inference and pool tasks -------------------------------------------------------------

def test_inference_augmentations_cover_geometries():
    task = make_task(3, 1, solutions=False)
    augmentations = inference_augmentations(task, 20, np.random.default_rng(5))
    assert len(augmentations) == 20
    assert augmentations[0] == identity_augmentation(task)
    assert {a.geometry for a in augmentations[:8]} == set(all_geometries())
    assert {a.geometry for a in augmentations[8:16]} == set(all_geometries())
    assert len(set(augmentations)) == 20
    assert not any(a.swaps_train_and_test for a in augmentations)
    for augmentation in augmentations:
        augment_task(task, augmentation)  # allowed without test outputs


def test_own_frame_probability_keeps_that_share_of_samples_in_the_task_frame(arc1_training):
    task = arc1_training["74dd1130"]
    rng = np.random.default_rng(5)
    for probability in (0.0, 0.5, 1.0):
        config = AugmentationConfig(own_frame_probability=probability)
        draws = [sample_augmentation(task, rng, config) for _ in range(800)]
        own = sum(d.geometry == 0 for d in draws) / len(draws)
        expected = probability + (1 - probability) / 8  # a geometric draw can also pick identity
        assert abs(own - expected) < 0.05, (probability, own)
        assert sum(d.color_map != IDENTITY_COLOR_MAP for d in draws) > 0.9 * len(draws)  # colours still change
    with pytest.raises(ValueError, match="own_frame_probability"):
        AugmentationConfig(own_frame_probability=1.5)
    # inference spreads its predictions over the geometries whatever the training share was
    plain = inference_augmentations(task.without_solutions(), 8, np.random.default_rng(2), AugmentationConfig())
    shared = inference_augmentations(task.without_solutions(), 8, np.random.default_rng(2),
                                     AugmentationConfig(own_frame_probability=0.5))
    assert plain == shared and {a.geometry for a in plain} == set(all_geometries())


def test_sample_pool_task_draws_distinct_pairs():
    pool = Task("pool", [Example(np.full((1, 1), i % 10), np.full((2, 1), i // 10)) for i in range(40)], [],
                n_train=5)
    rng = np.random.default_rng(6)
    for _ in range(50):
        task = sample_pool_task(pool, rng)
        assert len(task.train) == 5 and len(task.test) == 1 and task.n_train is None
        ids = {(int(e.input[0, 0]), int(e.output[0, 0])) for e in task.examples}
        assert len(ids) == 6
    with pytest.raises(ValueError, match="pool"):
        sample_pool_task(make_task(2, 1), rng)


# --- A2 problem augmentation --------------------------------------------------------------

def big_tasks(datasets) -> list[Task]:
    tasks = [task for name in DATASETS for task in datasets[name]]
    big = [task for task in tasks
           if max(max(g.shape) for e in task.examples for g in (e.input, e.output)) >= 28]
    return big[:100] + tasks[::25]


def test_problem_augmentation_never_exceeds_30(datasets):
    rng = np.random.default_rng(7)
    config = ProblemAugmentationConfig(probability=1.0, max_padding_width=5, max_upscale_factor=10)
    kinds = Counter()
    for task in big_tasks(datasets):
        for _ in range(5):
            augmentation = sample_problem_augmentation(task, rng, config)
            assert augmentation is not None  # geometry always fits
            kinds[augmentation.kind] += 1
            new = apply_problem_augmentation(task, augmentation)
            assert all(max(g.shape) <= MAX_SIDE for e in new.examples for g in (e.input, e.output))
    assert set(kinds) == set(PROBLEM_KINDS)


@pytest.mark.parametrize("target", ["inputs", "outputs"])
def test_problem_augmentation_changes_only_its_target(target):
    task = make_task(3, 2)
    rng = np.random.default_rng(8)
    kinds = set()
    for _ in range(100):
        augmentation = sample_problem_augmentation(task, rng, ProblemAugmentationConfig(1.0, target))
        kinds.add(augmentation.kind)
        assert augmentation.target == target
        new = apply_problem_augmentation(task, augmentation)
        for old, changed in zip(task.examples, new.examples, strict=True):
            kept, transformed = ("output", "input") if target == "inputs" else ("input", "output")
            assert getattr(changed, kept) is getattr(old, kept)
            expected = augmentation.apply_to_grid(getattr(old, transformed))
            assert np.array_equal(getattr(changed, transformed), expected)
    assert kinds == set(PROBLEM_KINDS)


def test_problem_augmentation_transforms():
    grid = np.array([[1, 2], [3, 4]])
    padding = ProblemAugmentation("padding", "inputs", {"width": 1, "color": 5})
    assert padding.apply_to_grid(grid).shape == (4, 4) and padding.apply_to_grid(grid)[0, 0] == 5
    upscale = ProblemAugmentation("upscale", "inputs", {"factor": 2})
    assert np.array_equal(upscale.apply_to_grid(grid), np.kron(grid, np.ones((2, 2), dtype=int)))
    mirror = ProblemAugmentation("mirror", "outputs", {"axis": 1, "mirror_first": 0})
    assert np.array_equal(mirror.apply_to_grid(grid), [[1, 2, 2, 1], [3, 4, 4, 3]])
    mirror = ProblemAugmentation("mirror", "outputs", {"axis": 0, "mirror_first": 1})
    assert np.array_equal(mirror.apply_to_grid(grid), [[3, 4], [1, 2], [1, 2], [3, 4]])
    data = json.loads(json.dumps(padding.to_dict()))
    assert ProblemAugmentation.from_dict(data) == padding
    assert str(padding) == "padding(color=5,width=1)@inputs"


def test_problem_augmentation_nothing_fits_returns_none():
    task = Task("big", [Example(grid_of(30, 30), grid_of(30, 30, 1))], [Example(grid_of(30, 30))])
    config = ProblemAugmentationConfig(1.0, "inputs", {"padding": 1, "upscale": 1, "mirror": 1})
    assert sample_problem_augmentation(task, np.random.default_rng(9), config) is None
    assert apply_problem_augmentation(task, None) is task
    with pytest.raises(ValueError, match="at most 30"):
        apply_problem_augmentation(task, ProblemAugmentation("upscale", "inputs", {"factor": 2}))


def test_problem_augmentation_probability_zero_never_applies():
    task = make_task(3, 1)
    rng = np.random.default_rng(10)
    config = ProblemAugmentationConfig()
    assert all(sample_problem_augmentation(task, rng, config) is None for _ in range(200))


def test_problem_augmentation_probability_half():
    rng = np.random.default_rng(11)
    config = ProblemAugmentationConfig(probability=0.5)
    count = sum(sample_problem_augmentation(make_task(2, 1), rng, config) is not None for _ in range(400))
    assert 150 < count < 250


@pytest.mark.parametrize("kwargs, message", [
    ({"probability": 1.5}, "probability"),
    ({"target": "both"}, "both"),
    ({"weights": {"geometry": -1.0}}, "non-negative"),
    ({"weights": {"geometry": 0.0, "padding": 0.0}}, "all zero"),
    ({"weights": {"zoom": 1.0}}, "zoom"),
    ({"max_upscale_factor": 1}, "max_upscale_factor"),
])
def test_problem_augmentation_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ProblemAugmentationConfig(**kwargs)
