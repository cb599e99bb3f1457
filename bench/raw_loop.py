"""The plain torch training loop that benches time: forward, backward and AdamW."""

import time

import torch


def raw_loop_seconds(model, samples: list[dict], pad_token_id: int, learning_rate: float, warmup: int = 1,
                     dtype: torch.dtype = torch.float32, labelled_logits_only: bool = False,
                     batch_size: int = 1) -> float:
    """Seconds spent on the steps after the first `warmup` ones, one optimizer step per `batch_size`
    samples (padded into one forward pass).
    `dtype` bfloat16 runs the forward under CPU autocast; `labelled_logits_only` computes logits only
    where a label is, as the project's Trainer does."""
    from arc24_lib.samples import PadCollator, with_labelled_logits_only

    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    collate = PadCollator(pad_token_id)
    for step in range(len(samples) // batch_size):
        if step == warmup:
            start = time.perf_counter()
        inputs = collate(samples[step * batch_size:(step + 1) * batch_size])
        with torch.autocast("cpu", dtype=dtype, enabled=dtype == torch.bfloat16):
            loss = model(**(with_labelled_logits_only(inputs) if labelled_logits_only else inputs)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return time.perf_counter() - start
