"""Reduced vocabulary: the kept tokens cover real prompts and answers, the cut projection trains on the loss the
full one gives over those tokens, and inference keeps to the tokens saved beside the adapter."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from arc24_lib.encoders import DEFAULT_ENCODER, parse_encoder
from arc24_lib.inference.airv import InferenceConfig, plan_predictions
from arc24_lib.inference.backend import GenerationConfig, SearchConfig
from arc24_lib.inference.dfs import search_batch
from arc24_lib.partitions import smallest_tasks
from arc24_lib.prompting import DEFAULT_PROMPT_VERSION, PROMPT_VERSIONS, create_prompt, tokenize_prompt
from arc24_lib.task_format import TaskFormat
from arc24_lib.vocabulary import (
    VOCABULARY_FILE,
    KeptRows,
    answer_vocabulary,
    cut_head,
    load_vocabulary,
    save_vocabulary,
)

ARC_PRIOR_ADAPTER = Path(__file__).parents[1] / "bench" / "results" / "arc_prior_2026-12-02" / "adapter"
ENCODERS = (DEFAULT_ENCODER, "GridCodeBlockEncoder(ReplaceNumberEncoder(MinimalGridEncoder()))",
            "GridShapeEncoder(RowNumberEncoder(GridWithSeparationEncoder('|')))")


@pytest.mark.parametrize("encoder", ENCODERS)
def test_the_kept_tokens_hold_every_token_of_real_prompts_and_answers(smollm2_tokenizer, arc1_training, encoder):
    grid_encoder = parse_encoder(encoder)
    for version in PROMPT_VERSIONS:
        kept = set(answer_vocabulary(smollm2_tokenizer, grid_encoder, version))
        assert len(kept) < 100
        for task in list(arc1_training)[:25]:
            ids, _ = tokenize_prompt(smollm2_tokenizer, create_prompt(task, grid_encoder, version, smollm2_tokenizer))
            missing = set(ids) - kept
            assert not missing, (encoder, version, task.task_id, smollm2_tokenizer.convert_ids_to_tokens(list(missing)))


def test_the_vocabulary_file_round_trips_and_a_bad_one_names_itself(tmp_path):
    save_vocabulary([5, 3, 9], tmp_path)
    assert load_vocabulary(tmp_path) == (3, 5, 9)
    assert load_vocabulary(tmp_path / "none") is None and load_vocabulary(None) is None
    (tmp_path / VOCABULARY_FILE).write_text(json.dumps({"kept_token_ids": []}))
    with pytest.raises(ValueError, match=VOCABULARY_FILE):
        load_vocabulary(tmp_path)


def lora_model(model_path):
    from peft import LoraConfig, get_peft_model

    from arc24_lib.models import load_model

    torch.manual_seed(0)
    model = load_model(model_path, device="cpu", dtype=torch.float32)
    return get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                                            init_lora_weights=False, task_type="CAUSAL_LM"))


def test_the_cut_projection_gives_the_loss_and_gradients_of_the_full_one_over_the_kept_tokens(
        tiny_model_path, smollm2_tokenizer, arc1_training):
    from arc24_lib.samples import with_labelled_logits_only

    encoder = parse_encoder(DEFAULT_ENCODER)
    kept = answer_vocabulary(smollm2_tokenizer, encoder, DEFAULT_PROMPT_VERSION)
    task = min(arc1_training, key=lambda t: sum(e.input.size for e in t.train))
    ids, labels = tokenize_prompt(smollm2_tokenizer, create_prompt(task, encoder, DEFAULT_PROMPT_VERSION,
                                                                   smollm2_tokenizer))
    batch = with_labelled_logits_only({"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels]),
                                       "attention_mask": torch.ones(1, len(ids), dtype=torch.long)})
    model = lora_model(tiny_model_path)
    rows = KeptRows(kept, model.config.vocab_size, smollm2_tokenizer)
    lora = [p for p in model.parameters() if p.requires_grad]

    inputs = {k: v for k, v in batch.items() if k not in ("labels", "shift_labels")}
    full_logits = model(**inputs).logits
    cut_logits = full_logits[..., rows.kept]  # the full projection, restricted by hand
    reference = torch.nn.functional.cross_entropy(cut_logits[0].float(), rows.rows(batch["shift_labels"])[0])
    expected = torch.autograd.grad(reference, lora)
    with cut_head(model, rows):
        loss = model(**{**batch, "shift_labels": rows.rows(batch["shift_labels"])}).loss
        assert model(**inputs).logits.shape[-1] == len(kept)
    grads = torch.autograd.grad(loss, lora)
    assert loss.detach().item() == pytest.approx(reference.detach().item(), rel=1e-5)
    assert all(torch.allclose(g, e, atol=1e-6) for g, e in zip(grads, expected, strict=True))
    assert torch.equal(model(**inputs).logits, full_logits)  # the full projection is back


def test_a_labelled_token_outside_the_kept_set_is_an_error_naming_it(smollm2_tokenizer):
    rows = KeptRows([1, 2, 3], len(smollm2_tokenizer), smollm2_tokenizer)
    token = smollm2_tokenizer.convert_tokens_to_ids("Ġpuzzle")
    assert rows.rows(torch.tensor([[-100, 2, 3]])).tolist() == [[-100, 1, 2]]
    with pytest.raises(ValueError, match=f"{token} \\('Ġpuzzle'\\)"):
        rows.rows(torch.tensor([[-100, 2, token]]))


def test_a_full_fine_tune_cannot_cut_the_projection_it_trains():
    from arc24_lib.training import TrainingOptions

    with pytest.raises(ValueError, match="use_lora"):
        TrainingOptions(use_lora=False, reduced_vocabulary=True)


def test_test_time_training_on_the_reduced_vocabulary_saves_it_and_inference_keeps_to_it(
        tmp_path, tiny_model_path, arc1_training, smollm2_tokenizer):
    from arc24_lib.data import Dataset
    from arc24_lib.inference.hf import HFBackend
    from arc24_lib.test_time import TestTimeConfig, fine_tune_at_test_time

    tasks = list(smallest_tasks(arc1_training, 2))
    config = TestTimeConfig(output_dir=str(tmp_path / "ttt"), max_steps=4, lora_r=4, learning_rate=1e-3,
                            logging_steps=1, max_seq_len=1024)  # reduced: the default
    task_format = TaskFormat(model_path=str(tiny_model_path))
    results = fine_tune_at_test_time(Dataset("two", {t.task_id: t for t in tasks}), config, task_format)
    assert [r["status"] for r in results] == ["trained", "trained"] and all(r["steps"] == 4 for r in results)
    [without] = fine_tune_at_test_time(Dataset("one", {tasks[0].task_id: tasks[0]}), replace(
        config, reduced_vocabulary=False, output_dir=str(tmp_path / "ttt_full")), task_format)
    assert without["steps"] == 4 and load_vocabulary(without["adapter_path"]) is None
    kept = load_vocabulary(results[0]["adapter_path"])
    assert kept == answer_vocabulary(smollm2_tokenizer, task_format.encoder, task_format.prompt_version)
    backend = HFBackend(str(tiny_model_path), device="cpu", prompts_per_call=4)
    plan = plan_predictions(tasks[0].without_solutions(), InferenceConfig(predictions_per_test_input=2),
                            task_format, backend.tokenizer)
    prompts, free = [p.prompt for p in plan], GenerationConfig(max_new_tokens=12)  # no shape hold: all steps free
    full_adapter = tmp_path / "full"
    shutil.copytree(results[0]["adapter_path"], full_adapter)
    (full_adapter / VOCABULARY_FILE).unlink()
    newline = smollm2_tokenizer.convert_tokens_to_ids("Ċ")
    full = backend.generate(prompts, free, str(full_adapter))
    assert all(newline in g.token_ids for g in full)  # the random model repeats the last prompt token
    narrowed = set(kept) - {newline}
    save_vocabulary(sorted(narrowed), results[0]["adapter_path"])
    sampling = GenerationConfig(max_new_tokens=12, temperature=1.0)
    for generations in (backend.generate(prompts, free, results[0]["adapter_path"]),
                        backend.generate(prompts, sampling, results[0]["adapter_path"])):
        assert all(g.token_ids and set(g.token_ids) <= narrowed for g in generations)
    assert any(set(g.token_ids) - set(kept) for g in backend.generate(prompts, sampling, str(full_adapter)))


def test_greedy_airv_tokens_are_the_full_vocabularys_on_the_real_model(tmp_path, arc1_training):
    """The embedded model under the ARC-prior adapter, with and without its kept tokens saved beside it: the same
    greedy tokens and log-probabilities, and the full model's answers stay inside the kept set."""
    from arc24_lib.inference.hf import HFBackend

    backend = HFBackend("embedded", device="cpu", prompts_per_call=8)
    adapter = tmp_path / "adapter"
    shutil.copytree(ARC_PRIOR_ADAPTER, adapter)
    task_format = TaskFormat()
    kept = answer_vocabulary(backend.tokenizer, task_format.encoder, task_format.prompt_version)
    save_vocabulary(kept, adapter)
    tasks = [t for t in smallest_tasks(arc1_training, 4)][2:4]
    plan = [p for task in tasks for p in plan_predictions(task.without_solutions(), InferenceConfig(), task_format,
                                                          backend.tokenizer)[:4]]
    prompts, limits = [p.prompt for p in plan], [p.max_new_tokens for p in plan]
    generation = GenerationConfig(max_new_tokens=max(limits))  # no hold: the kept set alone restricts
    full = backend.generate(prompts, generation, str(ARC_PRIOR_ADAPTER), limits)
    reduced = backend.generate(prompts, generation, str(adapter), limits)
    assert all(set(g.token_ids) <= set(kept) for g in full)
    assert [g.token_ids for g in reduced] == [g.token_ids for g in full]
    assert [g.cumulative_logprob for g in reduced] == pytest.approx([g.cumulative_logprob for g in full], abs=1e-4)
    search = SearchConfig(min_prob=0.05, max_candidates=4)
    found = [backend.search(prompts[:2], generation, search, str(path), limits[:2])
             for path in (ARC_PRIOR_ADAPTER, adapter)]
    assert [[a.token_ids for a in answers] for answers in found[1]] == [[a.token_ids for a in answers]
                                                                        for answers in found[0]]
    assert sum(map(len, found[0])) >= 1


def test_the_search_keeps_to_the_kept_tokens_in_the_cached_and_the_rollout_search():
    """The cached search with a kept mask and the rollout search (vLLM's) with the kept set, on a model set by
    hand: the same answers, none with a cut token, and not those of the full vocabulary."""
    from test_dfs import EOS, VOCAB, greedy_rollouts, left_padded, small_vocab_llama

    from arc24_lib.inference.vllm_search import logprobs_needed, search_rounds

    model = small_vocab_llama(seed=1, bigram=True)
    kept = (EOS, 2, 3, 5)
    mask = torch.full((VOCAB,), float("-inf"))
    mask[list(kept)] = 0.0
    prompts, limits, config = [[3, 1, 4], [2], [5, 5]], [6, 5, 6], SearchConfig(0.02, 10_000, 10_000)
    full = search_batch(model, *left_padded(prompts), limits, config, EOS)
    cached = search_batch(model, *left_padded(prompts), limits, config, EOS, None, mask)
    engine = greedy_rollouts(model, logprobs_needed(config.min_prob), mask)  # vLLM with allowed_token_ids
    rolled = search_rounds(engine, prompts, limits, config, EOS, None, kept)
    assert all(set(a.token_ids) <= set(kept) for answers in cached for a in answers)
    assert sum(map(len, cached)) >= 3 and cached != full
    for ours, theirs in zip([s.found for s in rolled], cached, strict=True):
        assert [a.token_ids for a in ours] == [a.token_ids for a in theirs]
        assert [a.logprob for a in ours] == pytest.approx([a.logprob for a in theirs], abs=1e-5)
