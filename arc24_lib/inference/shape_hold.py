"""Shape-held decoding: once an answer's header has declared its grid shape, the rest of the answer
is held to that shape. The model still picks every cell; the row numbers, separators, line ends
and the end token that the encoder writes for that shape are forced.

A small model often writes the right header ("grid shape: 5x1") and then stops a row early or
loops past the last row; holding the body to the header turns those answers into grids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from arc24_lib.data import MAX_SIDE, N_COLORS
from arc24_lib.encoders import GridEncoder, GridShapeEncoder, parse_encoder, parse_shape_header


@dataclass(frozen=True)
class AnswerTemplate:
    """The tokens after the header for one grid shape; `cells[i]` marks where the model picks a colour."""

    tokens: tuple[int, ...]
    cells: tuple[bool, ...]


class ShapeHold:
    """Which tokens may come next in an answer, given the answer's tokens so far."""

    def __init__(self, encoder: GridShapeEncoder, tokenizer: Any, newline: int, color_tokens: tuple[int, ...]):
        self.encoder, self.tokenizer = encoder, tokenizer
        self.newline, self.color_tokens, self.eos = newline, color_tokens, tokenizer.eos_token_id
        self._templates: dict[tuple[int, ...], AnswerTemplate | None] = {}  # by header tokens

    @classmethod
    def for_encoder(cls, encoder: GridEncoder, tokenizer: Any) -> ShapeHold | None:
        """The hold for answers in `encoder`'s format, or None when the encoder writes no shape header
        or the tokenizer does not give each cell a token of its own."""
        if not isinstance(encoder, GridShapeEncoder) or tokenizer.eos_token_id is None:
            return None
        newline = _ids(tokenizer, "\n")
        if len(newline) != 1:
            return None
        one_cell = [_ids(tokenizer, encoder.to_text(np.full((1, 1), color))) for color in range(N_COLORS)]
        if len({len(ids) for ids in one_cell}) != 1:
            return None
        differing = [i for i in range(len(one_cell[0])) if len({ids[i] for ids in one_cell}) > 1]
        if len(differing) != 1:
            return None
        color_tokens = tuple(ids[differing[0]] for ids in one_cell)
        return cls(encoder, tokenizer, newline[0], color_tokens) if len(set(color_tokens)) == N_COLORS else None

    def allowed(self, answer: Sequence[int]) -> tuple[int, ...] | None:
        """Tokens that may follow `answer` (the new tokens so far), or None when any may: the header is
        not finished, or it declares no shape this encoder can write."""
        try:
            header_end = list(answer).index(self.newline)
        except ValueError:
            return None
        template = self.template(tuple(answer[:header_end]))
        if template is None:
            return None
        position = len(answer) - header_end - 1
        if position >= len(template.tokens):
            return (self.eos,)
        return self.color_tokens if template.cells[position] else (template.tokens[position],)

    def template(self, header: tuple[int, ...]) -> AnswerTemplate | None:
        """The body that follows these header tokens (then the end token), or None when they declare
        no shape, a shape beyond 30 x 30, or one whose text does not tokenize cell by cell."""
        if header not in self._templates:
            self._templates[header] = self._build_template(header)
        return self._templates[header]

    def _build_template(self, header: tuple[int, ...]) -> AnswerTemplate | None:
        shape = parse_shape_header(self.tokenizer.decode(list(header)))
        if shape is None or not all(1 <= side <= MAX_SIDE for side in shape):
            return None
        texts = [self.encoder.to_text(np.full(shape, color)) for color in (0, 1)]
        header_line = texts[0].partition("\n")[0]
        bodies = [_ids(self.tokenizer, text.partition("\n")[2]) + [self.eos] for text in texts]
        # the body must tokenize the same inside the whole answer as on its own
        if _ids(self.tokenizer, texts[0]) != _ids(self.tokenizer, header_line) + [self.newline] + bodies[0][:-1]:
            return None
        if len(bodies[0]) != len(bodies[1]):
            return None
        cells = tuple(zero != one for zero, one in zip(*bodies, strict=True))
        if sum(cells) != shape[0] * shape[1]:
            return None
        # every colour must keep its own token inside rows too (no merges with its neighbours)
        mixed = np.arange(shape[0] * shape[1]).reshape(shape) % N_COLORS
        colors = iter(mixed.flatten().tolist())
        expected = [self.color_tokens[next(colors)] if cell else token for token, cell in zip(bodies[0], cells,
                                                                                                  strict=True)]
        if _ids(self.tokenizer, self.encoder.to_text(mixed).partition("\n")[2]) + [self.eos] != expected:
            return None
        return AnswerTemplate(tuple(bodies[0]), cells)


def _ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


class ShapeHolds:
    """Each encoder string's ShapeHold for one tokenizer, built once (None where the encoder has no hold)."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self._holds: dict[str, ShapeHold | None] = {}

    def get(self, encoder: str | None) -> ShapeHold | None:
        if encoder is None:
            return None
        if encoder not in self._holds:
            self._holds[encoder] = ShapeHold.for_encoder(parse_encoder(encoder), self.tokenizer)
        return self._holds[encoder]
