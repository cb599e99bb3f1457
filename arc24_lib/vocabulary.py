"""Reduced vocabulary: the few dozen token ids an ARC prompt and answer can hold, out of the tokenizer's
tens of thousands (SmolLM2: 26 of 49,152 over all ARC-AGI-1 training prompts and answers).

Training computes the vocabulary projection on these rows only (the loss normalised over them), which
skips most of the lm_head's work at every labelled position. The kept ids are saved beside the adapter,
and both backends then choose tokens among them where the shape hold leaves the choice free; the
log-probabilities they report and score with stay the full model's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from arc24_lib.data import MAX_SIDE, N_COLORS, Example, Task
from arc24_lib.encoders import GridEncoder
from arc24_lib.files import write_json_atomic
from arc24_lib.prompting import IGNORE_INDEX, create_prompt

VOCABULARY_FILE = "vocabulary.json"  # beside an adapter: the kept token ids it was trained on


def answer_vocabulary(tokenizer: Any, encoder: GridEncoder, prompt_version: str) -> tuple[int, ...]:
    """The sorted token ids that `encoder` writes for grids of every shape and colour, that the prompt
    template of `prompt_version` holds (chat template included), the digits (a prompt may count its
    examples), and the end and padding tokens."""
    rng = np.random.default_rng(0)
    grids = [rng.integers(0, N_COLORS, size=(rows, cols)) for rows in range(1, MAX_SIDE + 1)
             for cols in range(1, MAX_SIDE + 1)]
    pairs = [Example(grids[i], grids[-1 - i]) for i in range(2)]
    probe = Task("vocabulary-probe", pairs, [Example(grids[100], grids[200])])
    prompt = create_prompt(probe, encoder, prompt_version, tokenizer)
    texts = [encoder.to_text(grid) for grid in grids] + [prompt.text, prompt.answer, "0123456789"]  # counts in prompts
    ids = {token for encoded in tokenizer(texts, add_special_tokens=False)["input_ids"] for token in encoded}
    ids |= {token for token in (tokenizer.eos_token_id, tokenizer.pad_token_id) if token is not None}
    return tuple(sorted(ids))


def save_vocabulary(kept: Sequence[int], folder: str | Path) -> None:
    write_json_atomic({"kept_token_ids": list(kept)}, Path(folder) / VOCABULARY_FILE)


def load_vocabulary(folder: str | Path | None) -> tuple[int, ...] | None:
    """The kept ids saved in `folder` (an adapter), or None when it has none: the full vocabulary."""
    path = None if folder is None else Path(folder) / VOCABULARY_FILE
    if path is None or not path.is_file():
        return None
    try:
        kept = json.loads(path.read_text())["kept_token_ids"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a vocabulary file ({error})") from error
    if not kept or not all(isinstance(token, int) and token >= 0 for token in kept):
        raise ValueError(f"{path}: kept_token_ids must be a non-empty list of token ids")
    return tuple(sorted(set(kept)))


class KeptRows:
    """The map from a token id to its row in the cut projection, both ways."""

    def __init__(self, kept: Sequence[int], vocab_size: int, tokenizer: Any = None):
        import torch

        self.kept = torch.tensor(sorted(kept), dtype=torch.long)
        if int(self.kept.max()) >= vocab_size:
            raise ValueError(f"kept token id {int(self.kept.max())} is outside the model's {vocab_size} tokens")
        self.row_of = torch.full((vocab_size,), -1, dtype=torch.long)
        self.row_of[self.kept] = torch.arange(len(self.kept))
        self.tokenizer = tokenizer

    def rows(self, labels: Any) -> Any:
        """`labels` (token ids, IGNORE_INDEX where no loss) as rows of the cut projection; ValueError
        naming the first labelled token outside the kept set."""
        labelled = labels != IGNORE_INDEX
        rows = self.row_of.to(labels.device)[labels.clamp(min=0)]
        outside = labelled & (rows < 0)
        if bool(outside.any()):
            token = int(labels[outside][0])
            text = self.tokenizer.convert_ids_to_tokens(token) if self.tokenizer is not None else "?"
            raise ValueError(f"labelled token {token} ({text!r}) is outside the reduced vocabulary of "
                             f"{len(self.kept)} tokens; train with reduced_vocabulary=False or use an encoder "
                             "and prompt whose text the vocabulary covers")
        return rows.where(labelled, labels)


@contextmanager
def cut_head(model: Any, rows: KeptRows) -> Iterator[Any]:
    """Within the block, `model`'s vocabulary projection gives the kept rows only and its loss takes labels
    as rows (KeptRows.rows); the full projection is back afterwards. The projection must be frozen."""
    import torch
    from transformers.loss.loss_utils import ForCausalLMLoss

    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = causal_lm.get_output_embeddings()
    if head.weight.requires_grad:
        raise ValueError("the reduced vocabulary needs a frozen lm_head (LoRA training); this model trains it")
    cut = torch.nn.Linear(head.in_features, len(rows.kept), bias=head.bias is not None,
                          device=head.weight.device, dtype=head.weight.dtype).requires_grad_(False)
    cut.weight.copy_(head.weight.detach()[rows.kept.to(head.weight.device)])
    if head.bias is not None:
        cut.bias.copy_(head.bias.detach()[rows.kept.to(head.weight.device)])

    def loss(logits, labels, vocab_size, **kwargs):  # the cut width, not the config's vocabulary
        return ForCausalLMLoss(logits, labels, logits.shape[-1], **kwargs)

    causal_lm.set_output_embeddings(cut)
    causal_lm.loss_function = loss
    try:
        yield model
    finally:
        causal_lm.set_output_embeddings(head)
        del causal_lm._loss_function  # the property's own default again
