"""Pictures in the standard ARC palette: a task, and predictions against the truth (D4)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline", "inline"):
    matplotlib.use("Agg")  # headless unless a notebook already chose its inline backend

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from arc24_lib.data import Grid, Task  # noqa: E402

# The colours of the ARC web interface, indexed by cell value 0-9.
ARC_PALETTE = ("#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00",
               "#AAAAAA", "#F012BE", "#FF851B", "#7FDBFF", "#870C25")
_CMAP = ListedColormap(ARC_PALETTE)
_NORM = BoundaryNorm(np.arange(-0.5, 10.5, 1), _CMAP.N)


def draw_grid(ax: plt.Axes, grid: Grid | None, title: str = "") -> None:
    """Draw one grid on an axis with cell borders; None draws an empty, labelled panel."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    if grid is None:
        ax.text(0.5, 0.5, "no answer", ha="center", va="center", fontsize=9, color="grey")
        ax.set_facecolor("#f4f4f4")
        return
    grid = np.asarray(grid)
    ax.imshow(grid, cmap=_CMAP, norm=_NORM, interpolation="nearest")
    rows, cols = grid.shape
    ax.set_xticks(np.arange(-0.5, cols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, rows, 1), minor=True)
    ax.grid(which="minor", color="#555555", linewidth=0.5)
    ax.tick_params(which="minor", length=0)


def plot_task(task: Task, show_test_outputs: bool = True) -> Figure:
    """A figure with one column per pair: inputs on top, outputs below; test pairs last."""
    pairs = [(f"train {i + 1}", ex) for i, ex in enumerate(task.train)]
    pairs += [(f"test {i + 1}", ex) for i, ex in enumerate(task.test)]
    fig, axes = plt.subplots(2, len(pairs), figsize=(2.2 * len(pairs), 4.6), squeeze=False)
    for column, (label, example) in enumerate(pairs):
        draw_grid(axes[0, column], example.input, f"{label} input")
        output = example.output if show_test_outputs or label.startswith("train") else None
        draw_grid(axes[1, column], output, f"{label} output" if output is not None else "?")
    fig.suptitle(task.task_id)
    fig.tight_layout()
    return fig


def plot_predictions(task: Task, predictions: Sequence[Sequence[Grid | None]],
                     correct: Sequence[Sequence[bool]] | None = None) -> Figure:
    """One row per test input: the input, the truth (if known), then each predicted grid.

    `predictions[i]` holds the attempts for test input i; `correct`, when given, marks each
    attempt's title with ✓ or ✗.
    """
    n_columns = 2 + max((len(p) for p in predictions), default=0)
    fig, axes = plt.subplots(len(task.test), n_columns, figsize=(2.2 * n_columns, 2.4 * len(task.test)),
                             squeeze=False)
    for row, example in enumerate(task.test):
        draw_grid(axes[row, 0], example.input, f"test {row + 1} input")
        draw_grid(axes[row, 1], example.output, "truth")
        attempts = predictions[row] if row < len(predictions) else []
        for k in range(n_columns - 2):
            ax = axes[row, 2 + k]
            if k >= len(attempts):
                ax.axis("off")
                continue
            mark = ""
            if correct is not None:
                mark = " ✓" if correct[row][k] else " ✗"
            draw_grid(ax, attempts[k], f"attempt {k + 1}{mark}")
    fig.suptitle(task.task_id)
    fig.tight_layout()
    return fig


def plot_training(log_history: list[dict[str, Any]], validation: list[dict[str, Any]]) -> Figure:
    """A fine-tuning run: training and validation loss (the Trainer's log history), and the held-out
    vote-2 and right-among-predictions (`validation.VoteValidation` records), against the step."""
    figure, (losses, votes) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key, label in (("loss", "training loss"), ("eval_loss", "validation loss")):
        points = [(entry["step"], entry[key]) for entry in log_history if key in entry]
        if points:
            losses.plot(*zip(*points, strict=True), marker=".", label=label)
    losses.set_xlabel("step")
    losses.set_ylabel("answer loss per token")
    if losses.lines:
        losses.legend()
    for key, label in (("vote_2", "vote-2 (solved with 2 attempts)"), ("pass_n", "right among predictions")):
        points = sorted((record["step"], record[key]) for record in validation)
        if points:
            votes.plot(*zip(*points, strict=True), marker="o", label=label)
    votes.set_xlabel("step")
    votes.set_ylabel("mean over held-out tasks")
    votes.set_ylim(0, 1)
    if votes.lines:
        votes.legend()
    figure.tight_layout()
    return figure


def save_figure(fig: Figure, path: str | Path, dpi: int = 80) -> Path:
    """Save a figure as PNG (creating folders) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path
