import copy

import numpy as np
import pytest

from arc24_lib.encoders import DEFAULT_ENCODER, parse_encoder
from arc24_lib.partitions import smallest_tasks, subset_by_ids
from arc24_lib.prompting import (
    PROMPT_VERSIONS,
    count_tokens,
    create_prompt,
    fit_prompt,
    parse_answer,
    token_report,
)

ENCODERS = [
    DEFAULT_ENCODER,
    "MinimalGridEncoder()",
    "GridCodeBlockEncoder(GridShapeEncoder(RowNumberEncoder(GridWithSeparationEncoder('|'))))",
    "GridShapeEncoder(ReplaceNumberEncoder(MinimalGridEncoder()))",
    "RepeatNumberEncoder(n=3)",
]
TASK_IDS = ["6150a2bd", "0d3d703e", "74dd1130", "007bbfb7"]


@pytest.mark.parametrize("prompt_version", PROMPT_VERSIONS)
@pytest.mark.parametrize("encoder_text", ENCODERS)
def test_create_prompt_answer_parses_back_to_target(smollm2_tokenizer, arc1_training, prompt_version,
                                                    encoder_text):
    encoder = parse_encoder(encoder_text)
    eos = smollm2_tokenizer.eos_token
    for task in subset_by_ids(arc1_training, TASK_IDS):
        prompt = create_prompt(task, encoder, prompt_version, smollm2_tokenizer)
        assert prompt.text.startswith("<|im_start|>system") and prompt.text.endswith("<|im_start|>assistant\n")
        assert prompt.answer.endswith(eos) and prompt.answer.count(eos) == 1
        grid = parse_answer(prompt.answer, encoder, end_tokens=(eos,))
        assert grid is not None and np.array_equal(grid, prompt.target)
        # every train grid the version shows is in the prompt; the target is not
        if prompt_version.startswith("output-from-examples"):
            assert encoder.to_text(task.train[-1].output) in prompt.text
            assert encoder.to_text(task.test[0].input) in prompt.text


def test_create_prompt_without_answer_for_unknown_output(smollm2_tokenizer, arc1_training):
    task = arc1_training["6150a2bd"].without_solutions()
    prompt = create_prompt(task, parse_encoder(DEFAULT_ENCODER), "output-from-examples-v0", smollm2_tokenizer)
    assert prompt.answer == "" and prompt.target is None


def test_create_prompt_default_template_for_base_tokenizer(smollm2_tokenizer, arc1_training):
    tokenizer = copy.deepcopy(smollm2_tokenizer)
    tokenizer.chat_template = None
    encoder = parse_encoder(DEFAULT_ENCODER)
    prompt = create_prompt(arc1_training["6150a2bd"], encoder, "output-from-examples-v1", tokenizer)
    assert prompt.text.endswith("<|im_start|>assistant\n") and prompt.answer.endswith("<|im_end|>")
    assert np.array_equal(parse_answer(prompt.answer, encoder, ("<|im_end|>",)), prompt.target)


def test_create_prompt_rejects_unknown_version(smollm2_tokenizer, arc1_training):
    with pytest.raises(ValueError, match="output-from-examples-v0"):
        create_prompt(arc1_training["6150a2bd"], parse_encoder(DEFAULT_ENCODER), "v9", smollm2_tokenizer)


@pytest.mark.parametrize("text", [
    "", "hello", "grid shape: 2x2\n1 12\n", "grid shape: 2x2\n1 12\n2 3", "grid shape: 1x3\n1 1a2",
    "grid shape: 31x1\n" + "\n".join(f"{i} 1" for i in range(1, 32)), "```\n```", "\n\n\n",
])
def test_parse_answer_returns_none_on_garbage(text):
    assert parse_answer(text, parse_encoder(DEFAULT_ENCODER)) is None


def test_parse_answer_stops_at_end_token():
    encoder = parse_encoder(DEFAULT_ENCODER)
    text = encoder.to_text(np.array([[1, 2], [3, 4]])) + "<|im_end|>\ntrailing 99"
    assert parse_answer(text, encoder, ("<|im_end|>",)).tolist() == [[1, 2], [3, 4]]


def test_lean_prompt_shows_the_same_grids_in_far_fewer_tokens(smollm2_tokenizer, arc1_training):
    encoder = parse_encoder(DEFAULT_ENCODER)
    for task in subset_by_ids(arc1_training, TASK_IDS):
        wordy = create_prompt(task, encoder, "output-from-examples-v0", smollm2_tokenizer)
        lean = create_prompt(task, encoder, "output-from-examples-v2", smollm2_tokenizer)
        assert lean.answer == wordy.answer
        assert [lean.text[a:b] for a, b in lean.grid_spans] == [wordy.text[a:b] for a, b in wordy.grid_spans]
        assert "SmolLM" not in lean.text  # our short system message, not the template's default one
        saved = count_tokens(smollm2_tokenizer, wordy) - count_tokens(smollm2_tokenizer, lean)
        assert saved >= 60 + 8 * len(task.train)  # system prompt and instructions, then every header


def test_fit_prompt_drops_train_pairs_until_it_fits(smollm2_tokenizer, arc1_training):
    encoder = parse_encoder(DEFAULT_ENCODER)
    task = arc1_training["007bbfb7"]  # 5 train pairs of 3x3 -> 9x9
    full = create_prompt(task, encoder, "output-from-examples-v0", smollm2_tokenizer)
    n_full = count_tokens(smollm2_tokenizer, full)
    prompt, dropped = fit_prompt(task, encoder, "output-from-examples-v0", smollm2_tokenizer, n_full)
    assert dropped == 0 and prompt.text == full.text
    prompt, dropped = fit_prompt(task, encoder, "output-from-examples-v0", smollm2_tokenizer, n_full - 1)
    assert dropped >= 1 and count_tokens(smollm2_tokenizer, prompt) <= n_full - 1
    assert np.array_equal(prompt.target, full.target)
    prompt, dropped = fit_prompt(task, encoder, "output-from-examples-v0", smollm2_tokenizer, 50)
    assert prompt is None and dropped == len(task.train) - 1


def test_token_report_counts_every_test_input(smollm2_tokenizer, arc1_training):
    small = smallest_tasks(arc1_training, 5)
    report = token_report(small, parse_encoder(DEFAULT_ENCODER), smollm2_tokenizer, "output-from-examples-v0",
                          max_lengths=(100, 8192))
    assert report["prompts"] == sum(len(task.test) for task in small)
    assert report["median"] <= report["p90"] <= report["max"]
    assert report["fits"][8192] == 1.0 and report["fits"][100] < 1.0


def test_tokenizer_pad_token_differs_from_eos(smollm2_tokenizer):
    assert smollm2_tokenizer.pad_token_id is not None
    assert smollm2_tokenizer.pad_token_id != smollm2_tokenizer.eos_token_id
    assert smollm2_tokenizer.model_max_length == 8192
