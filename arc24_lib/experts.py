"""Two experts per task: an adapter trained in the task's own frame only and one trained over all
frames. The all-frames expert's best grid is the first attempt. The own-frame expert's best grid
is the second where at least 3 in 4 of its predictions agree on it, else the all-frames
expert's next one is (`selection.select_attempts_of_experts`).

A rule tied to the frame (a transpose, rows against columns) becomes another rule in rotated
frames, so the all-frames adapter sees it conflict with itself; the own-frame adapter learns it
in a few dozen steps. Colour lookups and most other rules are learned better over all frames.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from arc24_lib.inference.airv import InferenceConfig

OWN_FRAME = "own_frame"  # subfolder of the own-frame expert's adapters and predictions
ALL_FRAMES = "all_frames"
# Off by default. With rule colours and the vote gate of `selection.EXPERT_MIN_VOTE_SHARE`, 0.25
# solved 10/12 tiny tasks at seed 7 and 7/12 at seed 8, against 9/12 and 10/12 without: it adds the
# transpose 74dd1130, and the shorter all-frames training loses others (0d3d703e at seed 8)
DEFAULT_OWN_FRAME_SHARE = 0.0


@dataclass(frozen=True)
class Expert:
    """One expert's test-time training and inference settings and its share of the training time left."""

    name: str
    test_time: Any  # TestTimeConfig
    inference: InferenceConfig
    share: float


def check_own_frame_share(share: float) -> None:
    if not 0 <= share < 1:
        raise ValueError(f"own_frame_share is {share}; give a share of the training time, at least 0 and below 1")


def own_frame_test_time(config: Any) -> Any:
    """Test-time training in each task's own frame only, with adapters in `<output_dir>/own_frame`."""
    return replace(config, output_dir=str(Path(config.output_dir) / OWN_FRAME), geometric_augmentation=False,
                   one_kind_augmentation=False)


def own_frame_inference(config: InferenceConfig, adapters_dir: str | Path) -> InferenceConfig:
    """Inference in each task's own frame with the own-frame adapters, into `<output_dir>/own_frame`."""
    return replace(config, adapters_dir=str(adapters_dir), geometric_augmentation=False, one_kind_augmentation=False,
                   output_dir=str(Path(config.output_dir) / OWN_FRAME))


def expert_stages(test_time: Any, inference: InferenceConfig, own_frame_share: float) -> list[Expert]:
    """The experts in training order: the own-frame one first when `own_frame_share` > 0 (its
    adapters in `<test_time.output_dir>/own_frame`), then the all-frames one with the time left."""
    check_own_frame_share(own_frame_share)
    main = Expert(ALL_FRAMES, test_time, replace(inference, adapters_dir=test_time.output_dir), 1.0)
    if not own_frame_share:
        return [main]
    own = own_frame_test_time(test_time)
    return [Expert(OWN_FRAME, own, own_frame_inference(inference, own.output_dir), own_frame_share), main]


def fine_tune_experts(dataset: Any, test_time: Any, own_frame_share: float) -> dict[str, list[dict[str, Any]]]:
    """Train every task's experts, all tasks one expert at a time; with a `time_budget_s`, the
    own-frame expert gets `own_frame_share` of it and the all-frames one the rest. Returns the
    results of `fine_tune_at_test_time` by expert name."""
    from arc24_lib.test_time import fine_tune_at_test_time

    check_own_frame_share(own_frame_share)
    total, results = test_time.time_budget_s, {}
    shares = [(OWN_FRAME, own_frame_test_time(test_time), own_frame_share)] if own_frame_share else []
    for name, config, share in [*shares, (ALL_FRAMES, test_time, 1.0 - own_frame_share)]:
        if total is not None:
            config = replace(config, time_budget_s=total * share)
        results[name] = fine_tune_at_test_time(dataset, config)
    return results


def expert_predictions(inference_dir: str | Path) -> list[Path]:
    """The predictions files in an inference folder: the all-frames expert's, then the own-frame
    expert's where there is one."""
    from arc24_lib.inference.airv import PREDICTIONS_FILE

    own = Path(inference_dir) / OWN_FRAME / PREDICTIONS_FILE
    return [Path(inference_dir) / PREDICTIONS_FILE] + ([own] if own.exists() else [])
