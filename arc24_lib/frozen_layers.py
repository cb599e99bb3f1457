"""The frozen lower layers' output of a repeated training sample, computed once and kept (T2).

With adapters on the last `lora_layers` decoder layers only, the layers below them (and the embedding)
never change during training, so a sample seen again gives them the same output. Test-time training
goes over a pool of distinct samples (TrainingSamples' `distinct_samples`); for each one this keeps
the hidden states that enter the first adapted layer, and a repeat runs the adapted layers alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import torch

MAX_KEPT_BYTES = 2 * 1024**3  # hidden states kept per trainer at most; later samples run whole


def _causal_lm(model: Any) -> Any:
    """The causal LM under a PEFT wrapper, or `model` itself."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def frozen_prefix(model: Any) -> int:
    """How many leading decoder layers of `model` (PEFT-wrapped or not) train nothing, 0 where the layers
    cannot be run apart (no `model.layers`, a trained embedding, dropout in attention)."""
    causal_lm = _causal_lm(model)
    body = getattr(causal_lm, "model", None)
    if body is None or not hasattr(body, "layers") or not hasattr(body, "norm"):
        return 0
    if any(p.requires_grad for p in body.get_input_embeddings().parameters()):
        return 0
    if getattr(causal_lm.config, "attention_dropout", 0.0):
        return 0
    for index, layer in enumerate(body.layers):
        if any(p.requires_grad for p in layer.parameters()):
            return index
    return 0  # nothing trains in the layers: no adapted layer to start from


class FrozenLayers:
    """The frozen layers' output per `sample_index`, and the batch that hands it to the adapted layers.
    `autocast`: the mixed-precision context the model's own forward runs in (accelerate's), so the kept
    output is the one the whole model would compute."""

    def __init__(self, model: Any, autocast: Callable[[], AbstractContextManager] = nullcontext):
        self.n_frozen, self.autocast = frozen_prefix(model), autocast
        self.body = getattr(_causal_lm(model), "model", None)  # read only where n_frozen > 0
        self.kept: dict[int, torch.Tensor] = {}
        self.kept_bytes = 0

    @contextmanager
    def _layers(self, start: int, stop: int | None, norm: bool) -> Iterator[None]:
        """Within the block the decoder runs layers[start:stop] only, with or without its final norm."""
        layers, final_norm = self.body.layers, self.body.norm
        self.body.layers = torch.nn.ModuleList(list(layers)[start:stop])
        if not norm:
            self.body.norm = torch.nn.Identity()
        try:
            yield
        finally:
            self.body.layers, self.body.norm = layers, final_norm

    def _hidden(self, index: int, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The frozen layers' output of one sample at its own length, kept when there is room."""
        if index in self.kept:
            return self.kept[index]
        with torch.no_grad(), self.autocast(), self._layers(0, self.n_frozen, norm=False):
            hidden = self.body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        size = hidden.numel() * hidden.element_size()
        if self.kept_bytes + size <= MAX_KEPT_BYTES:
            self.kept[index], self.kept_bytes = hidden, self.kept_bytes + size
        return hidden

    @contextmanager
    def adapted_only(self, inputs: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """`inputs` (a padded batch with `sample_index`) with the frozen layers' output as `inputs_embeds`,
        and the decoder cut to the adapted layers while the block runs; without a frozen prefix or a
        `sample_index`, the batch as it is (its index dropped)."""
        indices = inputs.pop("sample_index", None)
        if indices is None or self.n_frozen == 0:
            yield inputs
            return
        input_ids, mask = inputs.pop("input_ids"), inputs["attention_mask"]
        lengths = mask.sum(dim=1).tolist()
        hidden = [self._hidden(int(index), input_ids[row:row + 1, :length], mask[row:row + 1, :length])
                  for row, (index, length) in enumerate(zip(indices.tolist(), lengths, strict=True))]
        width = input_ids.shape[1]  # right padding: a pad's hidden state is never read by a real position
        embeds = torch.cat([torch.nn.functional.pad(h, (0, 0, 0, width - h.shape[1])) for h in hidden])
        # checkpointed layers (reentrant) pass gradients on only from an input that asks for them
        embeds.requires_grad_(bool(getattr(self.body, "gradient_checkpointing", False)))
        with self._layers(self.n_frozen, None, norm=True):
            yield {**inputs, "inputs_embeds": embeds}
