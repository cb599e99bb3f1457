"""Task augmentations that revert exactly (A1) and problem augmentations that make new tasks (A2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from arc24_lib.data import MAX_SIDE, N_COLORS, Example, Grid, Task

# Geometry index = quarter_turns + 4 * transpose: rotate the grid `quarter_turns` quarter turns
# anticlockwise (as np.rot90 does), then transpose it when the index is 4 or more.
GEOMETRY_NAMES = ("identity", "rotate90", "rotate180", "rotate270",
                  "transpose", "rotate90+transpose", "rotate180+transpose", "rotate270+transpose")
N_GEOMETRIES = len(GEOMETRY_NAMES)
IDENTITY_COLOR_MAP = tuple(range(N_COLORS))
# Named subsets of the geometries. "flips" keeps rows as rows (identity, half turn, left-right and
# up-down mirrors), so a rule about rows stays a rule about rows in every frame; "diagonal-flips"
# keeps a transpose a transpose (identity, half turn, the two diagonal mirrors).
GEOMETRY_SETS: dict[str, tuple[int, ...]] = {"all": tuple(range(N_GEOMETRIES)), "flips": (0, 2, 5, 7),
                                             "diagonal-flips": (0, 2, 4, 6), "identity": (0,)}


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
    """Which task augmentations `sample_augmentation` draws."""

    geometric: bool = field(default=True, metadata={"help": "rotate/transpose: one of the 8 geometries"})
    permute_colors: bool = field(default=True, metadata={"help": "apply a random colour permutation"})
    keep_background_probability: float = field(default=1.0, metadata={
        "help": "chance (0-1) that colour 0 stays fixed when colours are permuted"})
    shuffle_train_pairs: bool = field(default=True, metadata={"help": "shuffle the order of train pairs"})
    swap_train_and_test: bool = field(default=True, metadata={
        "help": "pick the test pairs at random among all pairs; only for tasks with known test outputs"})
    one_kind: bool = field(default=False, metadata={
        "help": "each augmentation changes the geometry or the colours, not both, half the time each; so "
                "a task whose rule depends on the frame (transpose) or on the colours (a colour map) still "
                "shows its own rule in half the samples"})
    geometries: str = field(default="all", metadata={
        "help": f"which geometries `geometric` draws from: one of {sorted(GEOMETRY_SETS)}"})
    keep_rule_colors: bool = field(default=False, metadata={
        "help": "the rule's own colours (`rule_colors`: in every known output and no input, like the 5 of "
                "9565186b, or those of a fixed recolouring) stay fixed when colours are permuted, as the "
                "background does"})
    own_frame_probability: float = field(default=0.0, metadata={
        "help": "chance (0-1) that a geometric sample keeps the task's own frame; colours are still permuted"})

    def __post_init__(self) -> None:
        check_geometry_set(self.geometries)
        if not 0.0 <= self.own_frame_probability <= 1.0:
            raise ValueError(f"own_frame_probability is {self.own_frame_probability!r}; it must be between 0 and 1")
        if self.one_kind and self.own_frame_probability > 0:
            raise ValueError("one_kind already keeps the own frame in half the samples; "
                             "leave own_frame_probability at 0 with it")
        if not 0.0 <= self.keep_background_probability <= 1.0:
            raise ValueError(f"keep_background_probability is {self.keep_background_probability!r}; "
                             "it must be between 0 and 1")


def check_geometry_set(name: str) -> tuple[int, ...]:
    """The geometry indices of a named set; a clear error for an unknown name."""
    if name not in GEOMETRY_SETS:
        raise ValueError(f"geometries is {name!r}; choose one of {sorted(GEOMETRY_SETS)}")
    return GEOMETRY_SETS[name]


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
    geometric, permute_colors = config.geometric, config.permute_colors
    if config.one_kind and geometric and permute_colors:
        geometric = bool(rng.random() < 0.5)
        permute_colors = not geometric
    elif geometric and config.own_frame_probability > 0:
        geometric = bool(rng.random() >= config.own_frame_probability)
    geometry = int(rng.choice(GEOMETRY_SETS[config.geometries])) if geometric else 0
    color_map = _sample_color_map(rng, config, task) if permute_colors else IDENTITY_COLOR_MAP
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
    """N distinct-where-possible augmentations without swap; identity first, geometries cycle the set.
    With `config.one_kind`, they take turns: a new geometry in the task's own colours, then the
    task's own frame in new colours."""
    if n < 1:
        raise ValueError(f"n is {n!r}; ask for at least one augmentation")
    config = replace(config or AugmentationConfig(), swap_train_and_test=False)
    chosen = np.array(GEOMETRY_SETS[config.geometries] if config.geometric else (0,))
    others = chosen[chosen != 0]
    alternate = config.one_kind and len(others) > 0 and config.permute_colors
    geometries = [0, *(int(g) for g in rng.permutation(others))]
    while len(geometries) < n:
        geometries.extend(int(g) for g in rng.permutation(chosen))
    if alternate:  # odd positions: another geometry, own colours; even ones: own frame, new colours
        turns = geometries[1:len(chosen)]  # the first cycle, identity excluded
        while len(turns) < n // 2:  # one turn per odd position
            turns.extend(int(g) for g in rng.permutation(others))
        geometries = [0] + [turns[k // 2] if k % 2 == 0 else 0 for k in range(n - 1)]
    augmentations = [identity_augmentation(task)]
    for position, geometry in enumerate(geometries[1:n], start=1):
        own_colors = alternate and position % 2 == 1
        kind = replace(config, one_kind=False, permute_colors=config.permute_colors and not own_colors)
        for _ in range(10):  # a few draws to avoid repeating an augmentation already chosen
            augmentation = replace(sample_augmentation(task, rng, kind), geometry=geometry if config.geometric else 0)
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


# --- A2: problem augmentation -------------------------------------------------------------

PROBLEM_KINDS = ("geometry", "padding", "upscale", "mirror")
PROBLEM_TARGETS = ("inputs", "outputs")


@dataclass(frozen=True)
class ProblemAugmentation:
    """One transform applied to every input (or every output) of a task, making a new task."""

    kind: str
    target: str
    params: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in PROBLEM_KINDS:
            raise ValueError(f"kind is {self.kind!r}; choose one of {PROBLEM_KINDS}")
        if self.target not in PROBLEM_TARGETS:
            raise ValueError(f"target is {self.target!r}; choose one of {PROBLEM_TARGETS}")
        items = self.params.items() if isinstance(self.params, Mapping) else self.params
        object.__setattr__(self, "params", tuple(sorted((str(k), int(v)) for k, v in items)))

    @property
    def parameters(self) -> dict[str, int]:
        """The parameters as a dict."""
        return dict(self.params)

    @property
    def name(self) -> str:
        """Short readable form, e.g. `upscale(factor=2)@outputs`."""
        return f"{self.kind}({','.join(f'{k}={v}' for k, v in self.params)})@{self.target}"

    def __str__(self) -> str:
        return self.name

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form; `from_dict` reads it back."""
        return {"kind": self.kind, "target": self.target, "params": self.parameters}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProblemAugmentation:
        """Rebuild a problem augmentation written by `to_dict`."""
        return cls(data["kind"], data["target"], data.get("params", {}))

    def apply_to_grid(self, grid: Grid) -> Grid:
        """Transform one grid."""
        p = self.parameters
        if self.kind == "geometry":
            return apply_geometry(grid, p["geometry"])
        if self.kind == "padding":
            return np.pad(grid, p["width"], constant_values=p["color"])
        if self.kind == "upscale":
            return np.repeat(np.repeat(grid, p["factor"], axis=0), p["factor"], axis=1)
        mirror = np.flip(grid, axis=p["axis"])  # axis 0: upside down, stacked; 1: left-right, side by side
        return np.concatenate((mirror, grid) if p["mirror_first"] else (grid, mirror), axis=p["axis"])


@dataclass
class ProblemAugmentationConfig:
    """How often and which problem augmentations `sample_problem_augmentation` draws."""

    probability: float = field(default=0.0, metadata={"help": "chance (0-1) that a sample gets one"})
    target: str = field(default="either", metadata={
        "help": "grids to transform", "choices": ("inputs", "outputs", "either")})
    weights: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PROBLEM_KINDS, 1.0), metadata={
        "help": f"relative weight of each kind {PROBLEM_KINDS}; a missing kind has weight 0"})
    max_padding_width: int = field(default=3, metadata={"help": "padding border width is 1 to this"})
    max_upscale_factor: int = field(default=3, metadata={"help": "upscale factor is 2 to this"})

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability is {self.probability!r}; it must be between 0 and 1")
        if self.target not in (*PROBLEM_TARGETS, "either"):
            raise ValueError(f"target is {self.target!r}; choose inputs, outputs or either")
        if set(self.weights) - set(PROBLEM_KINDS) or any(not w >= 0 for w in self.weights.values()):
            raise ValueError(f"weights {self.weights} must be non-negative, for kinds among {PROBLEM_KINDS}")
        if not any(weight > 0 for weight in self.weights.values()):
            raise ValueError(f"weights {self.weights} are all zero; give at least one kind a weight")
        if self.max_padding_width < 1 or self.max_upscale_factor < 2:
            raise ValueError(f"max_padding_width is {self.max_padding_width!r} (needs >= 1) and "
                             f"max_upscale_factor is {self.max_upscale_factor!r} (needs >= 2)")


def _target_grids(task: Task, target: str) -> list[Grid]:
    key = "input" if target == "inputs" else "output"
    return [getattr(e, key) for e in task.examples if getattr(e, key) is not None]


def _options(kind: str, rows: int, cols: int, config: ProblemAugmentationConfig) -> list[dict[str, int]]:
    """Every parameter choice of `kind` that keeps grids of up to rows × cols within 30 × 30."""
    side = max(rows, cols)
    if kind == "geometry":
        return [{"geometry": g} for g in range(1, N_GEOMETRIES)]
    if kind == "padding":
        return [{"width": w, "color": c} for w in range(1, config.max_padding_width + 1)
                if side + 2 * w <= MAX_SIDE for c in range(N_COLORS)]
    if kind == "upscale":
        return [{"factor": f} for f in range(2, config.max_upscale_factor + 1) if side * f <= MAX_SIDE]
    return [{"axis": axis, "mirror_first": first} for axis, size in ((0, rows), (1, cols))
            if 2 * size <= MAX_SIDE for first in (0, 1)]


def sample_problem_augmentation(task: Task, rng: np.random.Generator,
                                config: ProblemAugmentationConfig) -> ProblemAugmentation | None:
    """A random problem augmentation that fits within 30 × 30, or None (by chance or if none fits)."""
    if not rng.random() < config.probability:
        return None
    target = config.target if config.target != "either" else PROBLEM_TARGETS[int(rng.integers(2))]
    grids = _target_grids(task, target)
    if not grids:
        return None
    rows, cols = max(g.shape[0] for g in grids), max(g.shape[1] for g in grids)
    options = {kind: _options(kind, rows, cols, config) for kind in PROBLEM_KINDS
               if config.weights.get(kind, 0) > 0}
    kinds = [kind for kind, choices in options.items() if choices]
    if not kinds:
        return None
    weights = np.array([config.weights[kind] for kind in kinds], dtype=float)
    kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
    params = options[kind][int(rng.integers(len(options[kind])))]
    return ProblemAugmentation(kind, target, params)


def apply_problem_augmentation(task: Task, problem_augmentation: ProblemAugmentation | None) -> Task:
    """The task with every input (or every output) transformed; None leaves it unchanged."""
    if problem_augmentation is None:
        return task
    on_inputs = problem_augmentation.target == "inputs"

    def change(example: Example) -> Example:
        grid = example.input if on_inputs else example.output
        if grid is None:
            return example
        new = problem_augmentation.apply_to_grid(grid)
        if max(new.shape) > MAX_SIDE:
            raise ValueError(f"{problem_augmentation} makes a {new.shape} grid in task {task.task_id}; "
                             f"grids must be at most {MAX_SIDE} per side")
        return Example(new, example.output) if on_inputs else Example(example.input, new)

    return Task(task.task_id, [change(e) for e in task.train], [change(e) for e in task.test], task.n_train)
