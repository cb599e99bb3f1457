"""Problem augmentations (A2): transform only the inputs or only the outputs of a task, which makes
a new task with a new rule (a geometry, padding, an upscale or a mirror of one side)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from arc24_lib.augmentation import N_GEOMETRIES, apply_geometry
from arc24_lib.data import MAX_SIDE, N_COLORS, Example, Grid, Task

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
