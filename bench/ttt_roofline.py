"""Test-time training against this CPU's limit: the matmul roofline, a step's FLOPs and where its time goes.

On the embedded SmolLM2 with the test-time defaults (LoRA on the last `lora_layers` layers, logits only where a
label is, batch 1) and the first test-time samples of the smallest training tasks:
(a) fp32 GEMM GFLOP/s here at each matmul shape of a step (torch.mm, this process's threads) and a square
    2048 GEMM as the machine's peak;
(b) a step's FLOPs, counted: forward through all layers, backward through the adapted layers only (the frozen
    weights need no weight gradient, layers below the first adapter need no backward at all), LoRA's own
    matmuls, the vocabulary projection at the labelled positions and its backward; attention counted causal
    (half of the T x T products). Its time split by an instrumented loop that does what the Trainer does:
    collate, forward below the first adapted layer, forward through the adapted layers, lm_head and loss,
    lm_head backward, layers backward, gradient clipping and AdamW; the Trainer's own step time on the same
    samples, whose excess over the loop is its overhead (scheduler, callbacks, logging);
(c) model FLOP utilisation: counted FLOPs / (seconds x peak), and the roofline time of each part (its FLOPs at
    its GEMM shapes' measured rate) beside its measured time.
Both tables again with the vocabulary projection cut to the tokens the samples use (and the special ones): the
ceiling of a reduced vocabulary (issue 37), the same loop on the same samples, the labels mapped to the cut rows.
With --ops, one more pass of the loop per arm under torch.profiler: self CPU time by kind of op (the layers'
matmuls, LoRA's matmuls of inner size r, the vocabulary projection, attention, log-softmax, the rest), what
fusing the non-matmul work could win at most.
Run: .venv/bin/python bench/ttt_roofline.py [--n-tasks 24] [--from-rank 0] [--samples-per-task 2] [--ops]
     [--json out.json]
"""

import argparse
import itertools
import json
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace

import torch

PARTS = ("collate", "forward frozen layers", "forward adapted layers", "lm_head + loss", "lm_head backward",
         "layers backward", "clip + AdamW")


@dataclass
class Shapes:
    """The matmul shapes of one decoder layer and the vocabulary projection, from the model's config."""

    hidden: int
    intermediate: int
    kv: int
    vocab: int
    layers: int

    @classmethod
    def of(cls, config) -> "Shapes":
        kv = config.num_key_value_heads * (config.hidden_size // config.num_attention_heads)
        return cls(config.hidden_size, config.intermediate_size, kv, config.vocab_size, config.num_hidden_layers)

    def projections(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each projection of a layer."""
        h, i, kv = self.hidden, self.intermediate, self.kv
        return {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h), "gate_proj": (h, i),
                "up_proj": (h, i), "down_proj": (i, h)}


@dataclass
class StepFlops:
    """FLOPs of one test-time step by part (multiply-add = 2 FLOPs)."""

    parts: dict[str, float] = field(default_factory=dict)

    @classmethod
    def count(cls, shapes: Shapes, tokens: int, labelled: int, adapted: int, lora_r: int,
              targets: list[str]) -> "StepFlops":
        proj = shapes.projections()
        layer = 2 * tokens * sum(a * b for a, b in proj.values())
        attention = 2 * tokens * tokens * shapes.hidden  # QK^T and AV, causal: half of 2 x 2 T^2 d
        lora = 2 * tokens * lora_r * sum(sum(proj[name]) for name in targets)
        head = 2 * labelled * shapes.hidden * shapes.vocab
        frozen = shapes.layers - adapted
        return cls({
            "forward frozen layers": frozen * (layer + attention),
            "forward adapted layers": adapted * (layer + attention + lora),
            "lm_head + loss": head,
            "lm_head backward": head,  # gradient to the hidden states only: lm_head is frozen
            # gradient to the inputs of every frozen matmul, attention's two products twice, LoRA's A and B
            # to their inputs and weights
            "layers backward": adapted * (layer + 2 * attention + 2 * lora),
        })

    @property
    def total(self) -> float:
        return sum(self.parts.values())


def gemm_gflops(m: int, k: int, n: int, repeats: int = 5) -> float:
    """fp32 GFLOP/s of an (m x k) @ (k x n) product here, best of `repeats` after a warm-up."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * m * k * n / best / 1e9


def _timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


PEAK = ("square 2048", "peak")


def roofline(shapes: Shapes, tokens: int, labelled: int, kept: int) -> dict[tuple[str, str], tuple[str, float]]:
    """(matmul, direction) -> (its m x k x n, measured GFLOP/s): each projection forward (x W) and backward
    (grad x W^T), lm_head full and cut to `kept` rows, and a square GEMM as the peak."""
    gemms = {PEAK: (2048, 2048, 2048)}
    for name, (k, n) in shapes.projections().items():
        gemms[name, "forward"], gemms[name, "backward"] = (tokens, k, n), (tokens, n, k)
    gemms["lm_head", "forward"] = (labelled, shapes.hidden, shapes.vocab)
    gemms["lm_head", "backward"] = (labelled, shapes.vocab, shapes.hidden)
    gemms["lm_head cut", "forward"] = (labelled, shapes.hidden, kept)
    return {key: ("x".join(map(str, shape)), gemm_gflops(*shape)) for key, shape in gemms.items()}


def roofline_seconds(flops: StepFlops, shapes: Shapes, rates: dict[tuple[str, str], tuple[str, float]],
                     cut: bool = False) -> dict[str, float]:
    """Each part's FLOPs at the rate its GEMMs reach here (attention and LoRA at the layer's mean rate);
    `cut`: the vocabulary projection cut to the kept tokens."""
    weights = {name: a * b for name, (a, b) in shapes.projections().items()}

    def mean_rate(kind: str) -> float:  # FLOP-weighted harmonic mean over the layer's projections
        return sum(weights.values()) / sum(w / rates[name, kind][1] for name, w in weights.items())

    head = rates["lm_head cut" if cut else "lm_head", "forward"][1]
    head_back = head if cut else rates["lm_head", "backward"][1]
    per_part = {"forward frozen layers": mean_rate("forward"), "forward adapted layers": mean_rate("forward"),
                "lm_head + loss": head, "lm_head backward": head_back, "layers backward": mean_rate("backward")}
    return {part: flops.parts[part] / (per_part[part] * 1e9) for part in flops.parts}


class Clock:
    """Named stopwatch laps: `lap(part)` adds the time since the last lap to `part`."""

    def __init__(self):
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.mark = time.perf_counter()

    def lap(self, part: str) -> None:
        now = time.perf_counter()
        self.seconds[part].append(now - self.mark)
        self.mark = now


def reduced_head(head: torch.nn.Linear, kept: torch.Tensor) -> tuple[torch.nn.Linear, torch.Tensor]:
    """The vocabulary projection cut to the `kept` token ids, and the map from a full id to its row (-1: cut)."""
    sliced = torch.nn.Linear(head.in_features, len(kept), bias=False)
    sliced.weight = torch.nn.Parameter(head.weight.detach()[kept].clone(), requires_grad=False)
    rows = torch.full((head.out_features,), -1, dtype=torch.long)
    rows[kept] = torch.arange(len(kept))
    return sliced, rows


def instrumented_steps(model, samples: list[dict], pad_token_id: int, config, warmup: int,
                       kept: torch.Tensor | None = None) -> dict[str, float]:
    """Mean seconds per part over the steps after `warmup`, one sample per step (the test-time default);
    `kept`: the vocabulary projection cut to these token ids (the labels mapped to their rows)."""
    import torch.nn.functional as F

    from arc24_lib.samples import IGNORE_INDEX, PadCollator, with_labelled_logits_only

    causal_lm = model.get_base_model()
    body, head = causal_lm.model, causal_lm.lm_head
    rows = None
    if kept is not None:
        head, rows = reduced_head(head, kept)
    first_adapted = body.layers[causal_lm.config.num_hidden_layers - config.lora_layers]
    clock = Clock()
    first_adapted.register_forward_pre_hook(lambda module, args: clock.lap("forward frozen layers"))
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay,
                                  fused=True)  # the Trainer's default optimizer (adamw_torch_fused)
    collate = PadCollator(pad_token_id)
    model.train()
    for step, sample in enumerate(samples):
        if step == warmup:
            clock.seconds.clear()
        clock.mark = time.perf_counter()
        batch = with_labelled_logits_only(collate([sample]))
        clock.lap("collate")
        hidden = body(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        clock.lap("forward adapted layers")
        detached = hidden.detach().requires_grad_()
        logits = head(detached[:, batch["logits_to_keep"]])
        targets = batch["shift_labels"].flatten()
        if rows is not None:
            targets = torch.where(targets == IGNORE_INDEX, targets, rows[targets.clamp(min=0)])
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets, ignore_index=IGNORE_INDEX)
        clock.lap("lm_head + loss")
        loss.backward()
        clock.lap("lm_head backward")
        hidden.backward(detached.grad)
        clock.lap("layers backward")
        torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad()
        clock.lap("clip + AdamW")
    return {part: statistics.mean(clock.seconds[part]) for part in PARTS}


def trainer_step_seconds(model, tokenizer, samples: list[dict], config, warmup: int, folder: str,
                         rows=None) -> float:
    """Mean seconds between the library Trainer's step ends (make_trainer, as test-time training runs it: data,
    step, scheduler, callbacks, logging) over the same samples in the same order as the loop, after warm-up.
    `rows`: the library's reduced vocabulary (vocabulary.KeptRows), as reduced_vocabulary=True trains."""
    from contextlib import nullcontext

    from transformers import TrainerCallback

    from arc24_lib.training import make_trainer, training_arguments
    from arc24_lib.vocabulary import cut_head

    class InOrder(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(samples)

    class StepClock(TrainerCallback):
        def __init__(self):
            self.ends = []

        def on_step_end(self, args, state, control, **kwargs):
            self.ends.append(time.perf_counter())

    clock = StepClock()
    args = training_arguments(config, folder, "cpu", disable_tqdm=True, max_steps=len(samples))
    trainer = make_trainer(model, tokenizer, args, InOrder(), callbacks=[clock], rows=rows)
    with cut_head(model, rows) if rows is not None else nullcontext():
        trainer.train()
    ends = clock.ends[warmup - 1:]
    return (ends[-1] - ends[0]) / (len(ends) - 1)


OP_KINDS = ("layer matmuls", "LoRA matmuls", "lm_head matmuls", "attention", "log-softmax", "other ops")


def op_kind(name: str, shapes: list, lora_r: int, vocab: int) -> str:
    """The kind of a profiled op: matmuls by their shapes (a size of the vocabulary is lm_head's, else a size
    of r LoRA's), the rest by name."""
    if name == "aten::mm":
        sizes = {size for shape in shapes for size in shape}
        return "lm_head matmuls" if vocab in sizes else "LoRA matmuls" if lora_r in sizes else "layer matmuls"
    if "scaled_dot_product" in name:
        return "attention"
    return "log-softmax" if "log_softmax" in name else "other ops"


def op_shares(model, samples: list[dict], pad_token_id: int, config, kept: torch.Tensor | None) -> dict[str, float]:
    """Share of the loop's self CPU time by `OP_KINDS`, one pass over `samples` under torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    vocab = model.config.vocab_size if kept is None else len(kept)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        instrumented_steps(model, samples, pad_token_id, config, 0, kept)
    seconds = dict.fromkeys(OP_KINDS, 0.0)
    for event in prof.key_averages(group_by_input_shape=True):
        seconds[op_kind(event.key, event.input_shapes, config.lora_r, vocab)] += event.self_cpu_time_total
    return {kind: value / sum(seconds.values()) for kind, value in seconds.items()}


def lora_forward_seconds(model, samples: list[dict], pad_token_id: int, warmup: int) -> tuple[float, float]:
    """Mean seconds of the decoder's forward (no graph) with the adapters and without: LoRA's own share."""
    from arc24_lib.samples import PadCollator

    body, collate, seconds = model.get_base_model().model, PadCollator(pad_token_id), ([], [])
    with torch.no_grad():
        for step, sample in enumerate(samples):
            batch = collate([sample])
            for with_lora, times in ((True, seconds[0]), (False, seconds[1])):
                start = time.perf_counter()
                if with_lora:
                    body(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                else:
                    with model.disable_adapter():
                        body(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                if step >= warmup:
                    times.append(time.perf_counter() - start)
    return statistics.mean(seconds[0]), statistics.mean(seconds[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-tasks", type=int, default=24, help="the smallest training tasks by cell count")
    parser.add_argument("--from-rank", type=int, default=0,
                        help="skip this many of the smallest first (larger tasks: longer samples)")
    parser.add_argument("--samples-per-task", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="passes over the samples per arm, arms in turn")
    parser.add_argument("--ops", action="store_true", help="also the self CPU time by kind of op (profiled)")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()

    import tempfile

    from arc24_lib.data import load_builtin
    from arc24_lib.models import load_tokenizer
    from arc24_lib.partitions import smallest_tasks
    from arc24_lib.task_format import TaskFormat
    from arc24_lib.test_time import TestTimeConfig, task_samples
    from arc24_lib.training import prepare_model

    torch.manual_seed(0)
    config = TestTimeConfig(device="cpu")
    task_format = TaskFormat()
    tokenizer = load_tokenizer(task_format.model_path)
    samples = []
    chosen = list(smallest_tasks(load_builtin("arc-agi-1/training"), args.from_rank + args.n_tasks))[args.from_rank:]
    for task in chosen:
        samples += list(itertools.islice(iter(task_samples([task], config, task_format, tokenizer)),
                                         args.samples_per_task))
    timed = samples[args.warmup:]
    tokens = round(statistics.mean(len(s["input_ids"]) for s in timed))
    labelled = round(statistics.mean(sum(label != -100 for label in s["labels"][1:]) for s in timed))
    model = prepare_model(config, "cpu", task_format.model_path)
    full = Shapes.of(model.config)
    from arc24_lib.training import kept_vocabulary
    from arc24_lib.vocabulary import KeptRows

    rows = KeptRows(kept_vocabulary(replace(config, reduced_vocabulary=True), tokenizer, task_format.encoder,
                                    [task_format.prompt_version]), model.config.vocab_size, tokenizer)
    kept = rows.kept  # the library's reduced vocabulary (arc24_lib.vocabulary)
    assert {i for s in samples for i in s["labels"] if i != -100} <= set(kept.tolist()), "a label outside the set"
    rates = roofline(full, tokens, labelled, len(kept))
    peak = rates[PEAK][1]
    settings = {"full vocabulary": (full, None),
                f"vocabulary cut to {len(kept)} tokens": (replace(full, vocab=len(kept)), kept)}
    arms, timings = {}, defaultdict(list)
    for _ in range(args.repeats):  # the arms in turn, so that the machine's drift falls on both
        for arm, (_, arm_kept) in settings.items():
            timings[arm].append(instrumented_steps(model, samples, tokenizer.pad_token_id, config, args.warmup,
                                                   arm_kept))
    for arm, (shapes, arm_kept) in settings.items():
        flops = [StepFlops.count(shapes, len(s["input_ids"]), sum(label != -100 for label in s["labels"][1:]),
                                 config.lora_layers, config.lora_r, config.lora_target_modules) for s in timed]
        mean_flops = StepFlops({p: statistics.mean(f.parts[p] for f in flops) for p in flops[0].parts})
        arms[arm] = {"flops": mean_flops.parts,
                     "seconds": {part: statistics.mean(t[part] for t in timings[arm]) for part in PARTS},
                     "loop_seconds_per_repeat": [sum(t.values()) for t in timings[arm]],
                     "roofline_seconds": roofline_seconds(mean_flops, full, rates, cut=arm_kept is not None)}
    ops = {arm: op_shares(model, samples, tokenizer.pad_token_id, config, arm_kept)
           for arm, (_, arm_kept) in settings.items()} if args.ops else {}
    with_lora, without = lora_forward_seconds(model, samples, tokenizer.pad_token_id, args.warmup)
    trainer_steps = defaultdict(list)  # the library's Trainer, full and reduced vocabulary in turn
    for _ in range(args.repeats):
        for arm, arm_rows in (("full", None), ("reduced", rows)):
            with tempfile.TemporaryDirectory() as folder:
                trainer_steps[arm].append(trainer_step_seconds(prepare_model(config, "cpu", task_format.model_path),
                                                               tokenizer, samples, config, args.warmup, folder,
                                                               arm_rows))
    trainer = statistics.mean(trainer_steps["full"])
    trainer_reduced = statistics.mean(trainer_steps["reduced"])

    print(f"{len(timed)} timed test-time samples of training tasks {args.from_rank + 1}-"
          f"{args.from_rank + args.n_tasks} by size: {tokens} tokens, "
          f"{labelled} labelled on average; LoRA r={config.lora_r} on the last {config.lora_layers} of "
          f"{full.layers} layers; {torch.get_num_threads()} threads, fp32\n")
    print("| matmul (m x k x n) | GFLOP/s |\n|---|---|")
    for (name, kind), (shape, rate) in rates.items():
        print(f"| {name} {kind} {shape} | {rate:.1f} |")
    for arm, figures in arms.items():
        print_parts(arm, figures, peak, trainer if arm == "full vocabulary" else None)
    if ops:
        print("\n| kind of op (self CPU time, profiled) | " + " | ".join(ops) + " |\n|---|" + "---|" * len(ops))
        for kind in OP_KINDS:
            print(f"| {kind} | " + " | ".join(f"{shares[kind]:.1%}" for shares in ops.values()) + " |")
    proj = full.projections().values()
    lora_share = config.lora_r * sum(map(sum, proj)) * config.lora_layers / (sum(a * b for a, b in proj) * full.layers)
    print(f"\ndecoder forward without a graph: {with_lora:.3f} s with the adapters, {without:.3f} s without "
          f"(LoRA's matmuls are {lora_share:.1%} of the layers' FLOPs)")
    before, after = (sum(a["seconds"].values()) for a in arms.values())
    print(f"\nsteps/s: library Trainer {1 / trainer:.3f} full vocabulary, {1 / trainer_reduced:.3f} with "
          f"reduced_vocabulary ({trainer / trainer_reduced:.2f}x; per pass: "
          + ", ".join(f"{x / y:.2f}x" for x, y in zip(trainer_steps["full"], trainer_steps["reduced"], strict=True))
          + f"); instrumented loop {1 / before:.3f} with the full vocabulary, "
          f"{1 / after:.3f} cut ({before / after:.2f}x; per pass: "
          + ", ".join(f"{x / y:.2f}x" for x, y in zip(*(a["loop_seconds_per_repeat"] for a in arms.values()),
                                                       strict=True)) + ")")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"task_ids": [task.task_id for task in chosen], "tokens": tokens, "labelled": labelled,
                       "kept_tokens": len(kept),
                       "rates": {f"{name} {kind} {shape}": rate for (name, kind), (shape, rate) in rates.items()},
                       "peak": peak, "arms": arms, "trainer_step_s": trainer_steps,
                       "forward_no_graph_s": {"with_lora": with_lora, "without": without}, "op_shares": ops},
                      out, indent=2)


def print_parts(arm: str, figures: dict, peak: float, trainer: float | None) -> None:
    """One arm's table: FLOPs, seconds and roofline seconds by part; the Trainer's step beside the loop."""
    parts, flops, limits = figures["seconds"], figures["flops"], figures["roofline_seconds"]
    loop, total, limit_total = sum(parts.values()), sum(flops.values()) / 1e9, sum(limits.values())
    print(f"\n{arm}\n\n| part | GFLOP | s/step | GFLOP/s | share of the step | roofline s | measured / roofline |")
    print("|---|---|---|---|---|---|---|")
    for part in PARTS:
        gflop, limit = flops.get(part, 0.0) / 1e9, limits.get(part)
        print(f"| {part} | {gflop:.2f} | {parts[part]:.3f} | {f'{gflop / parts[part]:.1f}' if gflop else '-'} | "
              f"{parts[part] / loop:.0%} | {f'{limit:.3f}' if limit else '-'} | "
              f"{f'{parts[part] / limit:.1f}x' if limit else '-'} |")
    print(f"| instrumented loop | {total:.2f} | {loop:.3f} | {total / loop:.1f} | 100% | {limit_total:.3f} | "
          f"{loop / limit_total:.1f}x |")
    if trainer is not None:
        print(f"| library Trainer step | {total:.2f} | {trainer:.3f} | {total / trainer:.1f} | {trainer / loop:.0%} "
              "| | |")
    print(f"\nmodel FLOP utilisation against the square-GEMM peak ({peak:.1f} GFLOP/s): loop {total / loop / peak:.1%}"
          + (f", Trainer {total / trainer / peak:.1%}" if trainer else ""))

if __name__ == "__main__":
    main()
