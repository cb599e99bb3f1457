"""Depth-first candidate search: exact answers on a model whose next-token distribution is set by hand,
the cached batched search against a search that recomputes every prefix, and the real embedded model."""

import itertools
import json
import math
from pathlib import Path

import pytest
import torch

from arc24_lib.inference.backend import GenerationConfig, SearchConfig
from arc24_lib.inference.dfs import Found, search_batch

VOCAB, EOS = 6, 0
ARC_PRIOR_ADAPTER = Path(__file__).parents[1] / "bench" / "results" / "arc_prior_2026-12-02" / "adapter"


def small_vocab_llama(seed: int, bigram: bool):
    """A Llama over 6 tokens (0 is the end token) with peaked next-token distributions. With `bigram`,
    its attention and MLP outputs are zero and its norm gives back the one-hot embedding, so its
    logits are lm_head's column for the last token alone: a table set by hand."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    hidden = 8
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=hidden, intermediate_size=16, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                         tie_word_embeddings=False, bos_token_id=1, eos_token_id=EOS, pad_token_id=EOS)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        if bigram:
            model.model.embed_tokens.weight.copy_(torch.eye(VOCAB, hidden))
            for layer in model.model.layers:
                layer.self_attn.o_proj.weight.zero_()
                layer.mlp.down_proj.weight.zero_()
            model.model.norm.weight.fill_(math.sqrt(1 / hidden + config.rms_norm_eps))
            table = torch.randn(VOCAB, VOCAB) * 2.0  # table[previous, next]: logits
            table[:, EOS] += 0.5
            model.lm_head.weight.zero_()
            model.lm_head.weight[:, :VOCAB] = table.T
        else:
            model.lm_head.weight.mul_(100.0)  # peaked (the init is near uniform), from the whole context
            model.lm_head.weight[EOS] = 0.0  # the end token at logit 0: answers of several tokens
    return model


def left_padded(prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, prompts))
    ids = torch.tensor([[EOS] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    return ids, mask


def next_logprobs(model, ids: list[int]) -> torch.Tensor:
    """The next-token log-probabilities after `ids`, from one forward pass over all of them (no cache)."""
    with torch.no_grad():
        return torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, -1].float(), dim=-1)


def enumerated_answers(model, prompt: list[int], limit: int, min_prob: float) -> list[Found]:
    """Every answer of at most `limit` tokens, enumerated in full, kept when its probability is at least
    `min_prob` (a prefix is never less likely than its answer), in depth-first order: at each token the
    likelier one first, ties to the lower id."""
    answers = []
    for length in range(1, limit + 1):
        for body in itertools.product(range(1, VOCAB), repeat=length - 1):
            tokens = (*body, EOS)
            steps = [float(next_logprobs(model, prompt + list(tokens[:i]))[tokens[i]]) for i in range(length)]
            if sum(steps) >= math.log(min_prob):
                answers.append((tuple((-lp, t) for lp, t in zip(steps, tokens, strict=True)),
                                Found(tokens, sum(steps), sum(steps))))
    return [found for _, found in sorted(answers, key=lambda item: item[0])]


def reference_search(model, prompt: list[int], limit: int, config: SearchConfig) -> list[Found]:
    """The same search written plainly: recursive, every prefix recomputed from the prompt."""
    found: list[Found] = []

    def visit(path: list[int], logprob: float) -> None:
        logprobs = next_logprobs(model, prompt + path)
        children = sorted(((float(lp), t) for t, lp in enumerate(logprobs.tolist())
                           if logprob + lp >= math.log(config.min_prob)), key=lambda c: (-c[0], c[1]))
        for lp, token in children:
            if len(found) >= config.max_candidates:
                return
            if token == EOS:
                found.append(Found((*path, EOS), logprob + lp, logprob + lp))
            elif len(path) + 2 <= limit:
                visit(path + [token], logprob + lp)

    visit([], 0.0)
    return found


def assert_same_answers(ours: list[Found], theirs: list[Found], tolerance: float = 1e-5) -> None:
    assert [f.token_ids for f in ours] == [f.token_ids for f in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=tolerance)
        assert a.search_logprob == pytest.approx(b.logprob, abs=tolerance)  # no hold: the same quantity


@pytest.mark.parametrize("min_prob", [0.3, 0.05, 0.01])
def test_search_returns_exactly_the_answers_above_the_threshold_in_order(min_prob):
    model = small_vocab_llama(seed=1, bigram=True)
    prompts, limit = [[3, 1, 4], [2], [5, 5]], 5
    ids, mask = left_padded(prompts)
    found = search_batch(model, ids, mask, [limit] * 3, SearchConfig(min_prob, 10_000, 10_000), EOS)
    total = 0
    for prompt, answers in zip(prompts, found, strict=True):
        expected = enumerated_answers(model, prompt, limit, min_prob)
        assert_same_answers(answers, expected)
        total += len(expected)
    assert total >= 3 if min_prob < 0.3 else total >= 1  # the table gives the search something to find


def test_caps_end_the_search_early_and_keep_its_order():
    model = small_vocab_llama(seed=1, bigram=True)
    ids, mask = left_padded([[3, 1, 4]])
    full = search_batch(model, ids, mask, [6], SearchConfig(0.01, 10_000, 10_000), EOS)[0]
    assert len(full) >= 4
    capped = search_batch(model, ids, mask, [6], SearchConfig(0.01, 3, 10_000), EOS)[0]
    assert capped == full[:3]
    explored = [search_batch(model, ids, mask, [6], SearchConfig(0.01, 10_000, n), EOS)[0] for n in (2, 4, 8, 20)]
    for answers in explored:
        assert answers == full[:len(answers)]
    counts = [len(answers) for answers in explored]
    assert counts == sorted(counts) and counts[0] < counts[-1] < len(full)
    short = search_batch(model, ids, mask, [2], SearchConfig(0.01, 10_000, 10_000), EOS)[0]
    assert short == [f for f in full if len(f.token_ids) <= 2]  # the token limit counts the end token


@pytest.mark.parametrize("seed", [0, 1, 5])
def test_cached_batched_search_equals_the_search_that_recomputes_every_prefix(seed):
    model = small_vocab_llama(seed=seed, bigram=False)
    prompts = [[1, 2, 3, 4, 5, 1, 2], [4], [2, 2, 5, 1]]
    limits, config = [7, 5, 6], SearchConfig(0.02, 50, 10_000)
    ids, mask = left_padded(prompts)
    batched = search_batch(model, ids, mask, limits, config, EOS)
    for prompt, limit, answers in zip(prompts, limits, batched, strict=True):
        alone = search_batch(model, *left_padded([prompt]), [limit], config, EOS)[0]
        reference = reference_search(model, prompt, limit, config)
        assert_same_answers(alone, reference)
        assert_same_answers(answers, reference)
    assert sum(map(len, batched)) >= 5 and max(len(f.token_ids) for answers in batched for f in answers) >= 5
    assert batched == search_batch(model, ids, mask, limits, config, EOS)  # deterministic


def test_every_greedy_answer_above_the_threshold_is_among_the_search_answers(arc1_training, smollm2_tokenizer):
    """The real embedded model with the committed ARC prior adapter (the raw model seldom ends an answer)
    on real prompts: greedy is one branch of the search, found with the same tokens and log-probability
    whenever its probability is at least min_prob."""
    from arc24_lib.encoders import DEFAULT_ENCODER
    from arc24_lib.inference.airv import InferenceConfig, plan_predictions
    from arc24_lib.inference.hf import HFBackend
    from arc24_lib.partitions import smallest_tasks
    from arc24_lib.task_format import TaskFormat

    backend = HFBackend("embedded", device="cpu", prompts_per_call=8)
    config = InferenceConfig(predictions_per_test_input=2)
    plan = [p for task in smallest_tasks(arc1_training, 3)
            for p in plan_predictions(task, config, TaskFormat(), smollm2_tokenizer)]
    prompts, limits = [p.prompt for p in plan], [p.max_new_tokens for p in plan]
    search, adapter = SearchConfig(min_prob=0.01, max_candidates=8), str(ARC_PRIOR_ADAPTER)
    checked = 0
    for hold in (None, DEFAULT_ENCODER):
        generation = GenerationConfig(shape_hold_encoder=hold)
        greedy = backend.generate(prompts, generation, adapter, max_new_tokens=limits)
        found = backend.search(prompts, generation, search, adapter, max_new_tokens=limits)
        for answer, answers in zip(greedy, found, strict=True):
            for candidate in answers:
                assert candidate.token_ids[-1] == smollm2_tokenizer.eos_token_id
                assert candidate.cumulative_logprob >= math.log(search.min_prob) - 1e-4 or hold
            ended = answer.token_ids[-1] == smollm2_tokenizer.eos_token_id
            if ended and answer.cumulative_logprob >= math.log(search.min_prob):  # held: at least as likely
                match = [c for c in answers if c.token_ids == answer.token_ids]
                assert match and match[0].cumulative_logprob == pytest.approx(answer.cumulative_logprob, abs=1e-3)
                checked += 1
    assert checked >= 4


def test_airv_with_the_search_records_every_answer_scores_them_and_resumes(tmp_path, arc1_training):
    """generator dfs through the whole inference half: each augmented prompt's answers recorded in the
    order found, scored and voted into a valid submission; an interrupted run resumes to the same records."""
    from arc24_lib.files import read_records
    from arc24_lib.inference.airv import InferenceConfig, run_airv
    from arc24_lib.inference.hf import HFBackend
    from arc24_lib.partitions import smallest_tasks
    from arc24_lib.pipeline import predict
    from arc24_lib.submission import validate_submission
    from arc24_lib.task_format import TaskFormat

    tasks = smallest_tasks(arc1_training, 2)
    backend = HFBackend("embedded", device="cpu", prompts_per_call=8)
    task_format = TaskFormat(adapter_path=str(ARC_PRIOR_ADAPTER))  # the adapter every task is answered with

    def config(folder: str) -> InferenceConfig:
        return InferenceConfig(output_dir=str(tmp_path / folder), generator="dfs", predictions_per_test_input=2,
                               search=SearchConfig(0.01, 4), prompts_per_call=2, device="cpu")

    outputs = predict(tasks, config("full"), task_format, backend)
    assert validate_submission(json.loads(outputs["submission"].read_text()), tasks) == []
    full = read_records(tmp_path / "full" / "predictions.jsonl")
    by_prompt: dict[tuple, list[int]] = {}
    for record in full:
        by_prompt.setdefault((record["task_id"], record["test_index"], record["augmentation_index"]), []).append(
            record["candidate_index"])
    assert len(by_prompt) == 2 * sum(len(task.test) for task in tasks)
    assert all(indices == list(range(len(indices))) for indices in by_prompt.values())
    assert max(map(len, by_prompt.values())) > 1 and all(r["grid"] is not None for r in full if r["text"])
    run_airv(tasks.without_solutions(), config("resumed"), task_format, backend, stop_after=1)
    partial = read_records(tmp_path / "resumed" / "predictions.jsonl")
    assert 1 <= len(partial) < len(full)
    resumed = read_records(run_airv(tasks.without_solutions(), config("resumed"), task_format, backend))
    key = lambda r: (r["task_id"], r["test_index"], r["augmentation_index"], r["candidate_index"])  # noqa: E731
    assert sorted(resumed, key=key) == sorted(full, key=key)


def greedy_rollouts(model, top: int, kept_mask=None):
    """An engine for vllm_search.search_rounds made of the model itself: each request decoded greedily from
    its prompt and path, no cache, with the top log-probabilities (and the chosen token's) at every step.
    `kept_mask` (0 kept, -inf cut): the choice among the kept tokens, the log-probabilities the whole
    vocabulary's, as vLLM gives them with allowed_token_ids."""
    def run(requests):
        results = []
        for prompt, path, max_tokens in requests:
            ids, tokens, steps = [*prompt, *path], [], []
            for _ in range(max_tokens):
                logprobs = next_logprobs(model, ids)
                values, index = logprobs.topk(min(top, VOCAB))
                token = int((logprobs if kept_mask is None else logprobs + kept_mask).argmax())
                steps.append({int(i): float(v) for v, i in zip(values, index, strict=True)} |
                             {token: float(logprobs[token])})
                tokens.append(token)
                ids.append(token)
                if token == EOS:
                    break
            results.append((tokens, steps))
        return results
    return run


@pytest.mark.parametrize("bigram", [True, False])
@pytest.mark.parametrize("caps", [(10_000, 10_000), (3, 10_000), (10_000, 5), (10_000, 9)])
def test_the_rollout_search_finds_what_the_cached_search_finds_caps_included(bigram, caps):
    """vllm_search, the vLLM backend's search, run on the same model through greedy rollouts: the same
    answers in the same order as the hf backend's search, also where a cap ends the search."""
    from arc24_lib.inference.vllm_search import logprobs_needed, search_rounds

    model = small_vocab_llama(seed=1, bigram=bigram)
    prompts, limits = [[3, 1, 4], [2], [5, 5], [1, 2, 3, 4, 5, 1, 2]], [6, 5, 6, 7]
    config = SearchConfig(0.02, *caps)
    cached = search_batch(model, *left_padded(prompts), limits, config, EOS)
    rolled = search_rounds(greedy_rollouts(model, logprobs_needed(config.min_prob)), prompts, limits, config, EOS,
                           None)
    for ours, theirs in zip([s.found for s in rolled], cached, strict=True):
        assert_same_answers(ours, theirs)
    assert sum(map(len, cached)) >= (4 if caps == (10_000, 10_000) else 1)
