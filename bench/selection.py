"""Selectors replayed on fixed candidates (issue 34): which of a test input's predicted grids become its two
attempts, compared without the noise of retrained adapters.

Reads a `candidates.py` output folder (each task's test-time adapter, each arm's predictions.jsonl and its
augmented scores), scores every arm's candidates of every test input under each augmentation alone, timed,
with the task's own adapter: under the augmentations AIRV predicted with (`airv`) and under 16 fresh ones
(`fresh`, a fixed sequence whose first K are the K-augmentation selector's). These raw log-probabilities go
to raw_scores.jsonl as they come (a rerun goes on where it stopped); every selector is then computed from
them. Per set, arm and selector: test inputs with the right grid among the candidates, how many of those
have it among the two attempts (the selection rate), tasks solved, and the selector's scoring seconds per
test input (a selector's time is the sum of its augmentations' timed calls; test inputs with two candidates
or fewer need none).
Run: .venv/bin/python bench/selection.py --candidates outputs/selection_candidates [--report]
"""

import argparse
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ARMS = ("greedy", "dfs6", "dfs", "sampling")
SETS = {"dev (ranks 1-24)": (0, 24), "dev2 (ranks 25-36)": (24, 36), "dev3 (ranks 37-48)": (36, 48),
        "dev4 (ranks 49-60)": (48, 60)}
FRESH = 16  # fresh augmentations scored; a K-augmentation selector uses the first K
MAX_CANDIDATES = 16  # most-voted candidates scored per test input
N_ATTEMPTS = 2


@dataclass
class TestInput:
    """One test input of one arm: its candidates (most votes first) and their raw scores."""

    task_id: str
    test_index: int
    grids: list[tuple]  # candidate grids, most voted first
    counts: np.ndarray  # votes per candidate
    logprob_per_token: np.ndarray  # mean log-probability per token of the candidate's own predictions
    raw: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # kind -> (logprobs C×K, tokens C×K, seconds K)
    truth: tuple
    train_shapes: list[tuple[tuple[int, int], tuple[int, int]]]  # (input shape, output shape) per train pair
    input_shape: tuple[int, int]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--candidates", default="outputs/selection_candidates", help="a candidates.py output folder")
    parser.add_argument("--dataset", default="arc-agi-1/training")
    parser.add_argument("--n-tasks", type=int, default=36, help="the smallest tasks by cell count")
    parser.add_argument("--arms", nargs="*", default=list(ARMS))
    parser.add_argument("--output-dir", default=None, help="default: <candidates>/selection")
    parser.add_argument("--report", action="store_true", help="the tables from the raw scores so far, no scoring")
    args = parser.parse_args()

    from arc24_lib.data import get_dataset
    from arc24_lib.files import read_records
    from arc24_lib.partitions import smallest_tasks

    candidates_dir = Path(args.candidates)
    output_dir = Path(args.output_dir or candidates_dir / "selection")
    tasks = smallest_tasks(get_dataset(args.dataset), args.n_tasks)
    finished = {(r["arm"], r["task_id"]) for r in read_records(candidates_dir / "results.jsonl")}
    ready = [t for t in tasks if all((arm, t.task_id) in finished for arm in args.arms)]
    print(f"{len(ready)} of {len(tasks)} tasks have every arm's candidates", flush=True)
    raw_path = output_dir / "raw_scores.jsonl"
    if not args.report:
        score_all(ready, args.arms, candidates_dir, raw_path)
    raw = read_records(raw_path)
    results = {(r["arm"], r["task_id"]): r for r in read_records(candidates_dir / "results.jsonl")}
    inputs = build_inputs(ready, args.arms, candidates_dir, raw)
    order = {t.task_id: i for i, t in enumerate(tasks)}
    report = tables(inputs, args.arms, order, results)
    print(report)
    (output_dir / "report.md").write_text(report + "\n")


def _candidates(records: list[dict[str, Any]]) -> list[Any]:
    from arc24_lib.selection import rank_candidates

    return rank_candidates(records)[:MAX_CANDIDATES]


def _augmentations(task: Any, records: list[dict[str, Any]], config: Any, task_format: Any) -> dict[str, list[Any]]:
    """The AIRV augmentations of a test input's records, and the fresh sequence for scoring."""
    from arc24_lib.augmentation import TaskAugmentation, inference_augmentations

    airv = {r["augmentation_index"]: TaskAugmentation.from_dict(r["augmentation"]) for r in records}
    rng = np.random.default_rng([config.random_seed + 1, zlib.crc32(task.task_id.encode())])
    return {"airv": [airv[i] for i in sorted(airv)],
            "fresh": inference_augmentations(task, FRESH, rng, task_format.augmentation)}


def score_all(tasks: Any, arms: list[str], candidates_dir: Path, raw_path: Path) -> None:
    """Raw log-probabilities of every arm's candidates under each augmentation alone, timed."""
    from tqdm.auto import tqdm

    from arc24_lib.config import load_config
    from arc24_lib.files import JsonlWriter, read_records
    from arc24_lib.inference import make_backend
    from arc24_lib.inference.airv import InferenceConfig
    from arc24_lib.inference.records import PREDICTIONS_FILE
    from arc24_lib.inference.scoring import scoring_prompts
    from arc24_lib.selection import group_records
    from arc24_lib.task_format import FORMAT_FILE, TaskFormat

    done = {(r["arm"], r["task_id"], r["test_index"], r["kind"], r["aug"]) for r in read_records(raw_path)}
    backend = None
    with JsonlWriter(raw_path) as writer:
        for task in tqdm(list(tasks), desc="raw scores", unit="task"):
            hidden = task.without_solutions()
            adapter = str(candidates_dir / "adapters" / task.task_id)
            for arm in arms:
                folder = candidates_dir / arm / task.task_id
                config = load_config(InferenceConfig, folder / "inference_config.json")
                task_format = load_config(TaskFormat, folder / FORMAT_FILE)  # run_airv saves it beside the config
                encoder = task_format.encoder
                if backend is None:
                    backend = make_backend("hf", task_format.model_path, device="cpu",
                                           prompts_per_call=config.prompts_per_call)
                groups = group_records(read_records(folder / PREDICTIONS_FILE))
                for test_index in range(len(task.test)):
                    group = groups.get((task.task_id, test_index), [])
                    grids = [c.grid for c in _candidates(group)]
                    if len(grids) <= N_ATTEMPTS:
                        continue  # every candidate is submitted: nothing to score
                    for kind, augmentations in _augmentations(hidden, group, config, task_format).items():
                        for aug, augmentation in enumerate(augmentations):
                            if (arm, task.task_id, test_index, kind, aug) in done:
                                continue
                            started = time.perf_counter()
                            items = scoring_prompts(hidden, test_index, grids, [augmentation], encoder,
                                                    task_format.prompt_version, backend.tokenizer,
                                                    config.max_seq_len - 1)
                            scores = backend.score([p for _, p, _ in items], [a for _, _, a in items], adapter)
                            seconds = time.perf_counter() - started
                            logprobs, tokens = [None] * len(grids), [None] * len(grids)
                            for (index, _, answer), score in zip(items, scores, strict=True):
                                logprobs[index] = score
                                tokens[index] = len(backend.tokenizer(answer, add_special_tokens=False)["input_ids"])
                            writer.write([{"arm": arm, "task_id": task.task_id, "test_index": test_index,
                                           "kind": kind, "aug": aug, "grids": [list(map(list, g)) for g in grids],
                                           "logprobs": logprobs, "n_tokens": tokens,
                                           "seconds": round(seconds, 4)}])


def build_inputs(tasks: Any, arms: list[str], candidates_dir: Path,
                 raw: list[dict[str, Any]]) -> dict[str, list[TestInput]]:
    """Per arm, every test input of every task with its candidates and raw scores."""
    from arc24_lib.files import read_records
    from arc24_lib.inference.records import PREDICTIONS_FILE
    from arc24_lib.selection import group_records

    by_key: dict[tuple, list[dict[str, Any]]] = {}
    for record in raw:
        by_key.setdefault((record["arm"], record["task_id"], record["test_index"], record["kind"]), []).append(record)
    inputs: dict[str, list[TestInput]] = {arm: [] for arm in arms}
    for task in tasks:
        shapes = [(ex.input.shape, ex.output.shape) for ex in task.train]
        for arm in arms:
            groups = group_records(read_records(candidates_dir / arm / task.task_id / PREDICTIONS_FILE))
            for test_index, test in enumerate(task.test):
                candidates = _candidates(groups.get((task.task_id, test_index), []))
                grids = [c.grid for c in candidates]
                raw_scores = {}
                for kind in ("airv", "fresh"):
                    calls = sorted(by_key.get((arm, task.task_id, test_index, kind), []), key=lambda r: r["aug"])
                    logprobs = np.array([[np.nan if v is None else v for v in c["logprobs"]] for c in calls]).T
                    tokens = np.array([[np.nan if v is None else v for v in c["n_tokens"]] for c in calls]).T
                    raw_scores[kind] = (logprobs.reshape(len(grids), -1) if calls else np.zeros((len(grids), 0)),
                                        tokens.reshape(len(grids), -1) if calls else np.zeros((len(grids), 0)),
                                        np.array([c["seconds"] for c in calls]))
                    if calls and len(grids) <= N_ATTEMPTS:
                        raise ValueError(f"{arm} {task.task_id}: scores for a test input with {len(grids)} candidates")
                inputs[arm].append(TestInput(task.task_id, test_index, grids, np.array([c.count for c in candidates]),
                                             np.array([c.logprob_per_token for c in candidates]), raw_scores,
                                             tuple(map(tuple, test.output.tolist())), shapes, test.input.shape))
    return inputs


# --- selectors: a test input -> (its candidates in attempt order, the augmentations it scored by kind) ---

def _mean(values: np.ndarray) -> np.ndarray:
    """Mean over the augmentations that fit (columns); -inf for a candidate with none."""
    counted = np.sum(~np.isnan(values), axis=1)
    return np.where(counted > 0, np.nansum(values, axis=1) / np.maximum(counted, 1), -np.inf)


def poe(t: TestInput, kind: str, k: int | None, per_token: bool) -> np.ndarray:
    """Product of experts: each candidate's log-probability under k augmentations, averaged (one
    ranking as the sum); per token: each augmentation's log-probability over its answer's tokens."""
    logprobs, tokens, _ = t.raw[kind]
    logprobs, tokens = logprobs[:, :k], tokens[:, :k]
    return _mean(logprobs / tokens if per_token else logprobs)


def by_score(t: TestInput, score: np.ndarray) -> list[int]:
    """Candidates by score, best first; ties keep the vote order."""
    return sorted(range(len(t.grids)), key=lambda i: (-score[i], i))


def by_votes(t: TestInput) -> list[int]:
    return list(range(len(t.grids)))  # rank_candidates' order: votes, then mean log-probability per token


def interleave(*orders: list[int]) -> list[int]:
    """Each order in turn gives its best candidate not chosen yet (selection.interleave on indices)."""
    chosen: list[int] = []
    queues = [list(order) for order in orders]
    while any(queues):
        for queue in queues:
            while queue and queue[0] in chosen:
                queue.pop(0)
            if queue:
                chosen.append(queue.pop(0))
    return chosen


def votes_then(t: TestInput, score: np.ndarray) -> list[int]:
    """Most votes first; ties by `score`."""
    return sorted(range(len(t.grids)), key=lambda i: (-t.counts[i], -score[i], i))


def top(score: np.ndarray, n: int) -> np.ndarray:
    """`score` for the n most-voted candidates only (the library's `scored_candidates`), -inf for the rest."""
    score = score.copy()
    score[n:] = -np.inf
    return score


def today(t: TestInput) -> list[int]:
    """The library's selection before issue 34: the 8 most-voted candidates scored under AIRV's augmentations
    (mean log-probability of the whole grid), the best-scored and the most-voted in turn."""
    return interleave(by_score(t, top(poe(t, "airv", None, False), 8)), by_votes(t))


def shape_rule_shapes(t: TestInput) -> set[tuple[int, int]]:
    """The test output's shape by every shape rule all train pairs agree on (empty: no rule holds)."""
    rules: list[Callable[[tuple[int, int]], tuple[int, int]]] = []
    shapes = t.train_shapes
    if len(shapes) >= 2:
        if all(i == o for i, o in shapes):
            rules.append(lambda s: s)
        if all(o == i[::-1] for i, o in shapes):
            rules.append(lambda s: s[::-1])
        if len({o for _, o in shapes}) == 1:
            rules.append(lambda s, fixed=shapes[0][1]: fixed)
        ratios = {(o[0] / i[0], o[1] / i[1]) for i, o in shapes}
        if len(ratios) == 1:
            (ry, rx), = ratios
            rules.append(lambda s: (s[0] * ry, s[1] * rx))
        deltas = {(o[0] - i[0], o[1] - i[1]) for i, o in shapes}
        if len(deltas) == 1:
            (dy, dx), = deltas
            rules.append(lambda s: (s[0] + dy, s[1] + dx))
    return {rule(t.input_shape) for rule in rules}


def shape_filtered(t: TestInput, order: list[int]) -> list[int]:
    """`order` with the candidates whose shape contradicts the train pairs' shape rule moved to the end
    (all kept where none fits)."""
    shapes = shape_rule_shapes(t)
    fits = [i for i in order if not shapes or (len(t.grids[i]), len(t.grids[i][0])) in shapes]
    return fits + [i for i in order if i not in fits] if fits else order


def selectors() -> dict[str, tuple[Callable[[TestInput], list[int]], dict[str, int | None]]]:
    """Name -> (selector, augmentations it scores per kind, None: all of that kind)."""
    table: dict[str, tuple[Callable[[TestInput], list[int]], dict[str, int | None]]] = {
        "votes": (by_votes, {}),
        "today (airv scores x votes in turn)": (today, {"airv": None}),
        "poe airv, grid": (lambda t: by_score(t, poe(t, "airv", None, False)), {"airv": None}),
        "poe airv, per token": (lambda t: by_score(t, poe(t, "airv", None, True)), {"airv": None}),
        "poe airv, the 8 most voted scored": (lambda t: by_score(t, top(poe(t, "airv", None, False), 8)),
                                              {"airv": None}),
        "poe airv + log votes": (lambda t: by_score(t, poe(t, "airv", None, False) + np.log(t.counts)),
                                 {"airv": None}),
        "votes, then poe airv": (lambda t: votes_then(t, poe(t, "airv", None, False)), {"airv": None}),
    }
    for k in (4, 8, 16):
        for per_token, norm in ((False, "grid"), (True, "per token")):
            table[f"poe{k}, {norm}"] = (lambda t, k=k, p=per_token: by_score(t, poe(t, "fresh", k, p)), {"fresh": k})
    for k in (8, 16):
        table[f"poe{k} + log votes"] = (lambda t, k=k: by_score(t, poe(t, "fresh", k, False) + np.log(t.counts)),
                                        {"fresh": k})
        table[f"votes, then poe{k}"] = (lambda t, k=k: votes_then(t, poe(t, "fresh", k, False)), {"fresh": k})
        table[f"poe{k} x votes in turn"] = (lambda t, k=k: interleave(by_score(t, poe(t, "fresh", k, False)),
                                                                      by_votes(t)), {"fresh": k})
    for name in list(table):
        if name.startswith(("votes", "poe airv, grid", "poe8, grid", "poe16, grid", "poe8 + log", "today")):
            selector, uses = table[name]
            table[name + " + shape rule"] = (lambda t, s=selector: shape_filtered(t, s(t)), uses)
    return table


def seconds(t: TestInput, uses: dict[str, int | None]) -> float:
    return sum(float(t.raw[kind][2][:k].sum()) for kind, k in uses.items())


def tables(inputs: dict[str, list[TestInput]], arms: list[str], order: dict[str, int],
           results: dict[tuple[str, str], dict[str, Any]]) -> str:
    """One table per set: a row per selector, per arm the right grids it submits of those among the candidates,
    the tasks solved and its scoring seconds per test input."""
    lines = []
    for set_name, (low, high) in SETS.items():
        mine = {arm: [t for t in inputs[arm] if low <= order[t.task_id] < high] for arm in arms}
        if not any(mine.values()):
            continue
        lines.append(f"\n### {set_name}")
        for arm in arms:
            tasks = {t.task_id for t in mine[arm]}
            n = max(len(mine[arm]), 1)
            lines.append(f"- {arm}: {len(tasks)} tasks, {len(mine[arm])} test inputs, right grid among the candidates "
                         f"for {sum(t.truth in t.grids for t in mine[arm])}, "
                         f"{sum(len(t.grids) for t in mine[arm]) / n:.1f} candidates per test input; AIRV "
                         f"{sum(results[arm, i]['airv_seconds'] for i in tasks) / n:.1f} s and the library's scoring "
                         f"{sum(results[arm, i]['scoring_seconds'] for i in tasks) / n:.1f} s per test input")
        lines += ["", "| selector | " + " | ".join(f"{arm}: selected (rate), solved, s" for arm in arms) + " |",
                  "|---|" + "---|" * len(arms)]
        for name, (selector, uses) in selectors().items():
            cells = []
            for arm in arms:
                right = [t for t in mine[arm] if t.truth in t.grids]
                chosen = {(t.task_id, t.test_index): t.truth in [t.grids[i] for i in selector(t)[:N_ATTEMPTS]]
                          for t in mine[arm]}
                selected = sum(chosen[t.task_id, t.test_index] for t in right)
                tasks = {t.task_id for t in mine[arm]}
                solved = sum(all(v for (task_id, _), v in chosen.items() if task_id == tid) for tid in tasks)
                cells.append(f"{selected}/{len(right)} ({selected / max(len(right), 1):.0%}), {solved}/{len(tasks)}, "
                             f"{sum(seconds(t, uses) for t in mine[arm]) / max(len(mine[arm]), 1):.1f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
