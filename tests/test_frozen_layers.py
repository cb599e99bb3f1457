import itertools

import pytest
import torch

from arc24_lib.frozen_layers import FrozenLayers, frozen_prefix
from arc24_lib.test_time import TestTimeConfig, task_samples
from arc24_lib.training import make_trainer, prepare_model, training_arguments


def pool_config(tiny_model_path, **overrides):
    values = dict(model_path=str(tiny_model_path), lora_r=4, lora_layers=1, distinct_samples=3, device="cpu",
                  max_seq_len=1024, max_steps=9, learning_rate=3e-3)
    values.update(overrides)
    return TestTimeConfig(**values)


def test_a_pool_of_distinct_samples_goes_over_them_again_in_new_orders(tiny_model_path, smollm2_tokenizer,
                                                                      arc1_training):
    task = arc1_training["0d3d703e"]
    fresh = list(itertools.islice(task_samples([task], pool_config(tiny_model_path, distinct_samples=None),
                                               smollm2_tokenizer), 3))
    stream = task_samples([task], pool_config(tiny_model_path), smollm2_tokenizer)
    drawn = list(itertools.islice(stream, 12))
    assert [sample["sample_index"] for sample in drawn[:3]] == [0, 1, 2]
    assert [{k: s[k] for k in ("input_ids", "labels")} for s in drawn[:3]] == fresh  # first pass: the fresh stream
    passes = [[s["sample_index"] for s in drawn[start:start + 3]] for start in (3, 6, 9)]
    assert all(sorted(order) == [0, 1, 2] for order in passes) and len({tuple(order) for order in passes}) > 1
    assert all(s["input_ids"] == drawn[s["sample_index"]]["input_ids"] for s in drawn)
    assert stream.counts.made == 3
    assert [s["sample_index"] for s in itertools.islice(stream, 12)] == [s["sample_index"] for s in drawn]
    with pytest.raises(ValueError, match="distinct_samples is 0"):
        task_samples([task], pool_config(tiny_model_path, distinct_samples=0), smollm2_tokenizer)


def train_on(config, tokenizer, tasks, tmp_path, keep_index: bool):
    """Losses, adapter weights and the lowest layer's forward count of a short run over the pool."""

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            for sample in task_samples(tasks, config, tokenizer):
                yield sample if keep_index else {k: v for k, v in sample.items() if k != "sample_index"}

    torch.manual_seed(0)
    model = prepare_model(config, "cpu")
    calls = []
    model.get_base_model().model.layers[0].register_forward_hook(lambda *args: calls.append(1))
    args = training_arguments(config, tmp_path / ("kept" if keep_index else "whole"), "cpu", disable_tqdm=True,
                              logging_steps=1)
    trainer = make_trainer(model, tokenizer, args, Stream())
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    weights = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    return losses, weights, len(calls), trainer.frozen


@pytest.mark.parametrize("per_device", [1, 2])
def test_kept_frozen_layers_train_exactly_as_the_whole_model(tmp_path, tiny_model_path, smollm2_tokenizer,
                                                              arc1_training, per_device):
    config = pool_config(tiny_model_path, samples_per_step=per_device, per_device_train_batch_size=per_device)
    tasks = [arc1_training["0d3d703e"]]
    losses, weights, lowest_calls, frozen = train_on(config, smollm2_tokenizer, tasks, tmp_path, keep_index=True)
    whole_losses, whole_weights, whole_calls, _ = train_on(config, smollm2_tokenizer, tasks, tmp_path,
                                                           keep_index=False)
    assert frozen.n_frozen == 1 and sorted(frozen.kept) == [0, 1, 2]
    assert lowest_calls == 3 and whole_calls == 9  # once per distinct sample against once per step
    assert len(losses) == 9 and losses == pytest.approx(whole_losses, rel=1e-5)
    for name, weight in weights.items():
        torch.testing.assert_close(weight, whole_weights[name], rtol=1e-4, atol=1e-6)


def test_frozen_prefix_counts_the_layers_that_train_nothing(tiny_model_path):
    model = prepare_model(pool_config(tiny_model_path), "cpu")
    assert frozen_prefix(model) == 1
    assert frozen_prefix(prepare_model(pool_config(tiny_model_path, lora_layers=None), "cpu")) == 0
    batch = {"input_ids": torch.tensor([[5, 6, 7]]), "attention_mask": torch.ones(1, 3, dtype=torch.long)}
    everywhere = FrozenLayers(prepare_model(pool_config(tiny_model_path, lora_layers=None), "cpu"))
    with everywhere.adapted_only({**batch, "sample_index": torch.tensor([0])}) as inputs:
        assert set(inputs) == set(batch)  # nothing to keep: the batch runs whole, its index dropped
    assert not everywhere.kept
