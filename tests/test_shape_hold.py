"""Shape-held decoding: once the header declares a shape, the answer's body is held to it."""

import numpy as np
import pytest

from arc24_lib.encoders import DEFAULT_ENCODER, parse_encoder
from arc24_lib.inference.backend import GenerationConfig, SearchConfig
from arc24_lib.inference.hf import HFBackend
from arc24_lib.inference.shape_hold import ShapeHold
from arc24_lib.models import load_model

HELD_ENCODERS = [
    DEFAULT_ENCODER,
    "GridShapeEncoder(MinimalGridEncoder())",
    "GridShapeEncoder(RowNumberEncoder(GridWithSeparationEncoder('|')))",
    "GridShapeEncoder(GridCodeBlockEncoder(RowNumberEncoder(MinimalGridEncoder())))",
    "GridShapeEncoder(RowNumberEncoder(ReplaceNumberEncoder(MinimalGridEncoder())))",
]


def ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("encoder_text", HELD_ENCODERS)
def test_hold_allows_every_token_of_a_true_answer_and_forces_the_rest(smollm2_tokenizer, encoder_text):
    encoder, tokenizer = parse_encoder(encoder_text), smollm2_tokenizer
    hold = ShapeHold.for_encoder(encoder, tokenizer)
    if hold is None:  # this encoder's cells are not one token each: answers stay free, which is safe
        pytest.skip(f"{encoder_text} is not held with this tokenizer")
    rng = np.random.default_rng(0)
    for shape in [(1, 1), (2, 3), (5, 1), (12, 7), (30, 30)]:
        grid = rng.integers(0, 10, size=shape)
        answer = ids(tokenizer, encoder.to_text(grid)) + [tokenizer.eos_token_id]
        header_end = answer.index(hold.newline)
        if hold.template(tuple(answer[:header_end])) is None:  # cells merge with their neighbours here
            assert encoder_text != DEFAULT_ENCODER
            assert all(hold.allowed(answer[:position]) is None for position in range(len(answer)))
            continue
        n_cells = 0
        for position in range(len(answer)):
            allowed = hold.allowed(answer[:position])
            if position <= header_end:
                assert allowed is None  # the header itself is the model's
                continue
            assert answer[position] in allowed
            n_cells += allowed == hold.color_tokens
            assert allowed == hold.color_tokens or len(allowed) == 1
        assert n_cells == grid.size
        assert hold.allowed(answer) == (tokenizer.eos_token_id,)


def test_hold_keeps_rows_to_the_header_and_leaves_odd_headers_free(smollm2_tokenizer):
    tokenizer = smollm2_tokenizer
    hold = ShapeHold.for_encoder(parse_encoder(DEFAULT_ENCODER), tokenizer)
    header = ids(tokenizer, "grid shape: 2x3\n")
    one_row = header + ids(tokenizer, "1 444")
    assert hold.allowed(one_row) == (hold.newline,)  # the row is full: it must end
    assert hold.allowed(one_row + [hold.newline]) == tuple(ids(tokenizer, "2"))  # and a second row must follow
    assert hold.allowed(header + ids(tokenizer, "1 44")) == hold.color_tokens  # a short row cannot end
    assert hold.allowed(header + ids(tokenizer, "1 444\n2 012")) == (tokenizer.eos_token_id,)
    for free in ["grid shape: 31x2\n", "grid shape: 0x2\n", "grid size: 2x3\n", "2x3\n"]:
        assert hold.allowed(ids(tokenizer, free)) is None
        assert hold.allowed(ids(tokenizer, free + "1 ")) is None
    for unheld in ["MinimalGridEncoder()", "RowNumberEncoder(MinimalGridEncoder())",
                   "GridShapeEncoder(RepeatNumberEncoder(n=2))"]:
        assert ShapeHold.for_encoder(parse_encoder(unheld), tokenizer) is None


SHORT_ROW_PROMPT = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
SHORT_ROW_ANSWER = "grid shape: 2x3\n1 507"  # a body that stops a row short of its header


@pytest.fixture(scope="module")
def short_row_model(tiny_model_path, smollm2_tokenizer, tmp_path_factory):
    """The tiny model taught one answer whose body stops a row short of its header: "2x3" and one row."""
    from conftest import teach_answer

    model = teach_answer(load_model(str(tiny_model_path), device="cpu"), smollm2_tokenizer, SHORT_ROW_PROMPT,
                         SHORT_ROW_ANSWER)
    folder = tmp_path_factory.mktemp("short_row_model")
    model.save_pretrained(folder)
    smollm2_tokenizer.save_pretrained(folder)
    return folder, SHORT_ROW_PROMPT


@pytest.mark.parametrize("temperature", [0.0, 0.3])
def test_hf_backend_holds_a_short_answer_to_its_declared_shape(short_row_model, temperature):
    folder, prompt = short_row_model
    backend = HFBackend(str(folder), device="cpu")
    encoder = parse_encoder(DEFAULT_ENCODER)
    free = backend.generate([prompt], GenerationConfig(max_new_tokens=40, temperature=temperature))[0]
    assert free.text == SHORT_ROW_ANSWER  # what it learned: not a valid 2x3 grid
    held = backend.generate([prompt] * 2, GenerationConfig(max_new_tokens=40, temperature=temperature,
                                                          shape_hold_encoder=DEFAULT_ENCODER))
    for generation in held:
        assert generation.text.startswith("grid shape: 2x3\n1 507\n2 ")
        grid = encoder.to_grid(generation.text)
        assert grid.shape == (2, 3) and grid[0].tolist() == [5, 0, 7]
        assert generation.token_ids[-1] == backend.tokenizer.eos_token_id and generation.cumulative_logprob < 0


def test_search_holds_every_answer_to_its_declared_shape_and_finds_greedy_first(short_row_model):
    folder, prompt = short_row_model
    backend = HFBackend(str(folder), device="cpu")
    encoder = parse_encoder(DEFAULT_ENCODER)
    for hold in (None, DEFAULT_ENCODER):
        config = GenerationConfig(max_new_tokens=40, shape_hold_encoder=hold)
        greedy = backend.generate([prompt], config)[0]
        found = backend.search([prompt] * 2, config, SearchConfig(min_prob=1e-4, max_candidates=20))
        assert [a.token_ids for a in found[0]] == [a.token_ids for a in found[1]]  # rows of one batch agree
        assert [a.cumulative_logprob for a in found[0]] == pytest.approx([a.cumulative_logprob for a in found[1]],
                                                                          abs=1e-5)
        first = found[0][0]
        assert (first.text, first.token_ids) == (greedy.text, greedy.token_ids)
        assert first.cumulative_logprob == pytest.approx(greedy.cumulative_logprob, abs=1e-4)
        if hold is None:
            assert first.text == SHORT_ROW_ANSWER
            continue
        assert len(found[0]) >= 2 and len({answer.text for answer in found[0]}) == len(found[0])
        for answer in found[0]:
            grid = encoder.to_grid(answer.text)
            assert grid.shape == (2, 3) and grid[0].tolist() == [5, 0, 7]
