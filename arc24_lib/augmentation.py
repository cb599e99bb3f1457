"""Task augmentations that revert exactly (A1): geometry, colours and example order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from arc24_lib.data import N_COLORS, Example, Grid, Task

# Geometry index = quarter_turns + 4 * transpose: rotate the grid `quarter_turns` quarter turns
# anticlockwise (as np.rot90 does), then transpose it when the index is 4 or more.
GEOMETRY_NAMES = ("identity", "rotate90", "rotate180", "rotate270",
                  "transpose", "rotate90+transpose", "rotate180+transpose", "rotate270+transpose")
N_GEOMETRIES = len(GEOMETRY_NAMES)
IDENTITY_COLOR_MAP = tuple(range(N_COLORS))


def all_geometries() -> tuple[int, ...]:
    """The 8 geometry indices (the dihedral group of the square), identity first."""
    return tuple(range(N_GEOMETRIES))


def _check_geometry(index: int) -> None:
    if not 0 <= index < N_GEOMETRIES:
        raise ValueError(f"geometry index is {index!r}; it must be 0-{N_GEOMETRIES - 1}")


def apply_geometry(grid: Grid, index: int) -> Grid:
    """Rotate `index % 4` quarter turns anticlockwise, then transpose when `index >= 4`."""
    _check_geometry(index)
    out = np.rot90(grid, index % 4)
    return np.ascontiguousarray(out.T if index >= 4 else out)


def revert_geometry(grid: Grid, index: int) -> Grid:
    """Undo `apply_geometry(grid, index)`."""
    _check_geometry(index)
    out = grid.T if index >= 4 else grid
    return np.ascontiguousarray(np.rot90(out, -(index % 4)))


def permute_colors(grid: Grid, color_map: tuple[int, ...]) -> Grid:
    """Replace every colour c by `color_map[c]`."""
    return np.asarray(color_map, dtype=grid.dtype)[grid]


def revert_colors(grid: Grid, color_map: tuple[int, ...]) -> Grid:
    """Undo `permute_colors(grid, color_map)`."""
    return np.argsort(color_map).astype(grid.dtype)[grid]


# --- A1: task augmentation ----------------------------------------------------------------

@dataclass(frozen=True)
class TaskAugmentation:
    """A replayable, exactly revertible change of a task: geometry, colours, example order.

    `train_order` and `test_order` index `task.examples` (train pairs then test pairs) and
    together are a permutation of them; the original task had `len(train_order)` train pairs.
    """

    geometry: int
    color_map: tuple[int, ...]
    train_order: tuple[int, ...]
    test_order: tuple[int, ...]

    def __post_init__(self) -> None:
        # Accept lists and numpy ints (e.g. from JSON or rng) but store plain int tuples.
        object.__setattr__(self, "geometry", int(self.geometry))
        for name in ("color_map", "train_order", "test_order"):
            object.__setattr__(self, name, tuple(int(value) for value in getattr(self, name)))
        _check_geometry(self.geometry)
        if sorted(self.color_map) != list(IDENTITY_COLOR_MAP):
            raise ValueError(f"color_map {self.color_map} is not a permutation of 0-9")
        if not self.train_order:
            raise ValueError("train_order is empty; a task needs at least one train pair")
        if sorted(self.train_order + self.test_order) != list(range(self.n_examples)):
            raise ValueError(f"train_order {self.train_order} and test_order {self.test_order} together "
                             f"must be a permutation of 0-{self.n_examples - 1}")

    @property
    def n_examples(self) -> int:
        """Number of examples (train + test) of the task this augmentation is for."""
        return len(self.train_order) + len(self.test_order)

    @property
    def swaps_train_and_test(self) -> bool:
        """True when the test examples are not exactly the original test examples."""
        return set(self.test_order) != set(range(len(self.train_order), self.n_examples))

    @property
    def name(self) -> str:
        """Short readable form, e.g. `rotate90+transpose|colors:0312456789|train:1,0|test:2`."""
        parts = [GEOMETRY_NAMES[self.geometry], "colors:" + "".join(map(str, self.color_map)),
                 "train:" + ",".join(map(str, self.train_order)),
                 "test:" + ",".join(map(str, self.test_order))]
        return "|".join(parts + (["swap"] if self.swaps_train_and_test else []))

    def __str__(self) -> str:
        return self.name

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form; `from_dict` reads it back."""
        return {"geometry": self.geometry, "color_map": list(self.color_map),
                "train_order": list(self.train_order), "test_order": list(self.test_order)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskAugmentation:
        """Rebuild an augmentation written by `to_dict`."""
        unknown = set(data) - {"geometry", "color_map", "train_order", "test_order"}
        if unknown:
            raise ValueError(f"unknown TaskAugmentation keys {sorted(unknown)}")
        return cls(**data)


@dataclass
class AugmentationConfig:
    """Which task augmentations training samples draw (`sample_augmentation`), and inference spreads
    its predictions over (`inference_augmentations`, which never swaps pairs nor keeps the frame).
    Test-time training and the inference that uses its adapters share one (`per_task_augmentation`)."""

    geometric: bool = field(default=True, metadata={"help": "rotations and flips: the 8 geometries"})
    permute_colors: bool = field(default=True, metadata={"help": "random colour permutations"})
    keep_background_probability: float = field(default=1.0, metadata={
        "help": "chance (0-1) that colour 0 stays fixed when colours are permuted"})
    keep_rule_colors: bool = field(default=False, metadata={
        "help": "the rule's own colours (`rule_colors`: in every known output and no input, or those of a fixed "
                "recolouring) stay fixed when colours are permuted, as the background does"})
    shuffle_train_pairs: bool = field(default=True, metadata={"help": "random order of the train pairs"})
    swap_train_and_test: bool = field(default=True, metadata={
        "help": "training: pick the test pairs at random among all pairs (tasks with known test outputs)"})
    own_frame_probability: float = field(default=0.0, metadata={
        "help": "training: chance (0-1) that a sample keeps the task's own frame; colours are still permuted"})

    def __post_init__(self) -> None:
        if not 0.0 <= self.own_frame_probability <= 1.0:
            raise ValueError(f"own_frame_probability is {self.own_frame_probability!r}; it must be between 0 and 1")
        if not 0.0 <= self.keep_background_probability <= 1.0:
            raise ValueError(f"keep_background_probability is {self.keep_background_probability!r}; "
                             "it must be between 0 and 1")


def per_task_augmentation() -> AugmentationConfig:
    """Test-time training's augmentation, and its inference's: the rule's own colours kept, and half
    the samples in the task's own frame, so a rule that a rotation changes (a transpose) shows its
    own form in most samples (measured in bench/README.md)."""
    return AugmentationConfig(keep_rule_colors=True, own_frame_probability=0.5)


def identity_augmentation(task: Task) -> TaskAugmentation:
    """The augmentation that changes nothing in `task`."""
    n_train, n_examples = len(task.train), len(task.examples)
    return TaskAugmentation(0, IDENTITY_COLOR_MAP, tuple(range(n_train)), tuple(range(n_train, n_examples)))


def rule_colors(task: Task) -> set[int]:
    """Constants of the rule of `task`: colours in every known output and in none of its inputs,
    and the colours a fixed recolouring changes (`fixed_recoloring_colors`)."""
    outputs = [set(np.unique(example.output).tolist()) for example in task.examples if example.output is not None]
    inputs = set().union(*(np.unique(example.input).tolist() for example in task.examples))
    return (set.intersection(*outputs) - inputs if outputs else set()) | fixed_recoloring_colors(task)


def fixed_recoloring_colors(task: Task) -> set[int]:
    """Where every known output of `task` is its input with each colour replaced by one fixed colour
    (0d3d703e: 3 → 4, 1 → 5, 2 → 6, 8 → 9), the colours on both sides of each change; else nothing.
    A colour permutation would make that recolouring a different one in every sample."""
    pairs = [example for example in task.examples if example.output is not None]
    if not pairs or any(example.input.shape != example.output.shape for example in pairs):
        return set()
    images: dict[int, set[int]] = {}
    for example in pairs:
        for color in np.unique(example.input).tolist():
            images.setdefault(color, set()).update(np.unique(example.output[example.input == color]).tolist())
    if any(len(image) != 1 for image in images.values()):
        return set()
    return {color for source, image in images.items() for color in (source, *image) if image != {source}}


def _sample_color_map(rng: np.random.Generator, config: AugmentationConfig, task: Task) -> tuple[int, ...]:
    """A colour permutation with fixed points: the background (by chance) and, when asked, the rule's colours."""
    fixed = {0} if rng.random() < config.keep_background_probability else set()
    if config.keep_rule_colors:
        fixed |= rule_colors(task)
    free = np.array([color for color in range(N_COLORS) if color not in fixed])
    color_map = np.arange(N_COLORS)
    color_map[free] = free[rng.permutation(len(free))]
    return tuple(int(color) for color in color_map)


def _sample_order(task: Task, rng: np.random.Generator,
                  config: AugmentationConfig) -> tuple[tuple[int, ...], tuple[int, ...]]:
    n_train, n_examples = len(task.train), len(task.examples)
    if config.swap_train_and_test and task.test and task.has_solutions:
        # Any n_test of the examples may become the test pairs, so every pair is sometimes the target.
        test = [int(i) for i in rng.choice(n_examples, size=len(task.test), replace=False)]
        train = [i for i in range(n_examples) if i not in test]
    else:
        train, test = list(range(n_train)), list(range(n_train, n_examples))
    if config.shuffle_train_pairs:
        train = [train[i] for i in rng.permutation(len(train))]
    return tuple(train), tuple(test)


def sample_augmentation(task: Task, rng: np.random.Generator,
                        config: AugmentationConfig | None = None) -> TaskAugmentation:
    """A random augmentation of `task` drawn as `config` says."""
    config = config or AugmentationConfig()
    geometric = config.geometric
    if geometric and config.own_frame_probability > 0:
        geometric = bool(rng.random() >= config.own_frame_probability)
    geometry = int(rng.choice(all_geometries())) if geometric else 0
    color_map = _sample_color_map(rng, config, task) if config.permute_colors else IDENTITY_COLOR_MAP
    train_order, test_order = _sample_order(task, rng, config)
    return TaskAugmentation(geometry, color_map, train_order, test_order)


def augment_grid(grid: Grid, augmentation: TaskAugmentation) -> Grid:
    """Apply the augmentation's geometry and colours to one grid."""
    return permute_colors(apply_geometry(grid, augmentation.geometry), augmentation.color_map)


def revert_grid(grid: Grid, augmentation: TaskAugmentation) -> Grid:
    """Bring a grid (e.g. a prediction for the augmented test input) back to the original frame."""
    return revert_geometry(revert_colors(grid, augmentation.color_map), augmentation.geometry)


def _map_example(example: Example, function: Any, augmentation: TaskAugmentation) -> Example:
    output = None if example.output is None else function(example.output, augmentation)
    return Example(function(example.input, augmentation), output)


def augment_task(task: Task, augmentation: TaskAugmentation) -> Task:
    """The task with every grid transformed and the examples reordered (or swapped)."""
    if len(task.train) != len(augmentation.train_order) or len(task.test) != len(augmentation.test_order):
        raise ValueError(f"task {task.task_id} has {len(task.train)} train and {len(task.test)} test pairs; "
                         f"augmentation {augmentation} is for another shape")
    if augmentation.swaps_train_and_test and not task.has_solutions:
        raise ValueError(f"task {task.task_id} has unknown test outputs; train/test swap is not allowed")
    examples = task.examples
    train = [_map_example(examples[i], augment_grid, augmentation) for i in augmentation.train_order]
    test = [_map_example(examples[i], augment_grid, augmentation) for i in augmentation.test_order]
    return Task(task.task_id, train, test, task.n_train)


def revert_task(augmented_task: Task, augmentation: TaskAugmentation) -> Task:
    """The original task back from `augment_task(task, augmentation)`: grids, order and split."""
    augmented = augmented_task.examples
    if len(augmented) != augmentation.n_examples or len(augmented_task.test) != len(augmentation.test_order):
        raise ValueError(f"task {augmented_task.task_id} does not match augmentation {augmentation}")
    originals: list[Example] = list(augmented)
    for position, example in zip(augmentation.train_order + augmentation.test_order, augmented, strict=True):
        originals[position] = _map_example(example, revert_grid, augmentation)
    n_train = len(augmentation.train_order)
    return Task(augmented_task.task_id, originals[:n_train], originals[n_train:], augmented_task.n_train)


def inference_augmentations(task: Task, n: int, rng: np.random.Generator,
                            config: AugmentationConfig | None = None) -> list[TaskAugmentation]:
    """N distinct-where-possible augmentations without swap; identity first, then the geometries in
    random cycles (the training-only `own_frame_probability` plays no part here)."""
    if n < 1:
        raise ValueError(f"n is {n!r}; ask for at least one augmentation")
    config = replace(config or AugmentationConfig(), swap_train_and_test=False, own_frame_probability=0.0)
    chosen = np.array(all_geometries() if config.geometric else (0,))
    geometries = [0, *(int(g) for g in rng.permutation(chosen[chosen != 0]))]
    while len(geometries) < n:
        geometries.extend(int(g) for g in rng.permutation(chosen))
    augmentations = [identity_augmentation(task)]
    for geometry in geometries[1:n]:
        for _ in range(10):  # a few draws to avoid repeating an augmentation already chosen
            augmentation = replace(sample_augmentation(task, rng, config), geometry=geometry if config.geometric else 0)
            if augmentation not in augmentations:
                break
        augmentations.append(augmentation)
    return augmentations


def sample_pool_task(task: Task, rng: np.random.Generator) -> Task:
    """A normal task from a pool task: `n_train` distinct train pairs and 1 test pair from `task.train`."""
    if task.n_train is None:
        raise ValueError(f"task {task.task_id} is not a pool task (n_train is None)")
    if task.n_train + 1 > len(task.train):
        raise ValueError(f"pool task {task.task_id} has {len(task.train)} pairs, fewer than n_train + 1")
    chosen = rng.choice(len(task.train), size=task.n_train + 1, replace=False)
    pairs = [task.train[int(i)] for i in chosen]
    return Task(task.task_id, pairs[:-1], pairs[-1:])
