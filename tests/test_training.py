import itertools
import json

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from arc24_lib.config import config_from_dict, load_config, parse_config, save_config
from arc24_lib.data import save_dataset
from arc24_lib.encoders import DEFAULT_ENCODER, parse_encoder
from arc24_lib.models import check_context, load_model, load_tokenizer, merge_adapter, set_context_length
from arc24_lib.partitions import subset_by_ids
from arc24_lib.prompting import IGNORE_INDEX, PROMPT_VERSIONS, create_prompt, tokenize_prompt
from arc24_lib.samples import PadCollator, SampleSource, TrainingSamples, fixed_samples, with_labelled_logits_only
from arc24_lib.training import FineTuningConfig, answer_loss, fine_tune

TASK_IDS = ["6150a2bd", "0d3d703e", "74dd1130"]


@pytest.fixture(scope="module")
def small_challenges(tmp_path_factory, arc1_training):
    path = tmp_path_factory.mktemp("data") / "small_challenges.json"
    return save_dataset(subset_by_ids(arc1_training, TASK_IDS), path)


@pytest.mark.parametrize("prompt_version", PROMPT_VERSIONS)
def test_labels_cover_exactly_the_answer_tokens(smollm2_tokenizer, arc1_training, prompt_version):
    tokenizer = smollm2_tokenizer
    source = SampleSource(list(subset_by_ids(arc1_training, TASK_IDS)), prompt_version)
    samples = TrainingSamples([source], parse_encoder(DEFAULT_ENCODER), tokenizer, 2048, seed=0)
    for sample in itertools.islice(samples, 6):
        ids, labels = sample["input_ids"], sample["labels"]
        first_answer = next(i for i, label in enumerate(labels) if label != IGNORE_INDEX)
        assert all(label == IGNORE_INDEX for label in labels[:first_answer])
        assert labels[first_answer:] == ids[first_answer:]
        assert ids[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(ids[:first_answer]).endswith("<|im_start|>assistant\n")
    task = arc1_training["6150a2bd"]
    prompt = create_prompt(task, parse_encoder(DEFAULT_ENCODER), prompt_version, tokenizer)
    ids, labels = tokenize_prompt(tokenizer, prompt)
    answer_ids = [i for i, label in zip(ids, labels, strict=True) if label != IGNORE_INDEX]
    assert tokenizer.decode(answer_ids) == prompt.answer


@pytest.mark.parametrize("prompt_version", PROMPT_VERSIONS)
def test_shown_grid_labels_cover_the_train_outputs_and_the_answer(smollm2_tokenizer, arc1_training, prompt_version):
    tokenizer, encoder = smollm2_tokenizer, parse_encoder(DEFAULT_ENCODER)
    task = arc1_training["0d3d703e"]
    prompt = create_prompt(task, encoder, prompt_version, tokenizer)
    kind = "input" if prompt_version.startswith("input") else "output"
    shown = [getattr(example, kind) for example in task.train]
    assert [prompt.text[start:end] for start, end in prompt.grid_spans] == [encoder.to_text(g) for g in shown]
    ids, labels = tokenize_prompt(tokenizer, prompt, label_shown_grids=True)
    plain_ids, plain_labels = tokenize_prompt(tokenizer, prompt)
    assert ids == plain_ids  # labelling never changes what the model reads
    labelled = [i for i, label in zip(ids, labels, strict=True) if label != IGNORE_INDEX]
    assert tokenizer.decode(labelled) == "".join(encoder.to_text(g) for g in shown) + prompt.answer
    assert sum(label != IGNORE_INDEX for label in labels) > 4 * sum(label != IGNORE_INDEX for label in plain_labels)
    samples = TrainingSamples([SampleSource([task], prompt_version)], encoder, tokenizer, 2048, seed=0,
                              label_shown_grids=True)
    sample = next(iter(samples))  # an augmented 3x3 task: same label count as the plain prompt
    assert sum(label != IGNORE_INDEX for label in sample["labels"]) == len(labelled)


def test_labelled_logits_only_gives_the_same_loss_and_gradients(tiny_model_path, smollm2_tokenizer, arc1_training):
    tokenizer, encoder = smollm2_tokenizer, parse_encoder(DEFAULT_ENCODER)
    model = load_model(tiny_model_path, device="cpu", dtype=torch.float32)
    samples = []
    for task_id, shown in [("6150a2bd", True), ("0d3d703e", False), ("74dd1130", True)]:
        ids, labels = tokenize_prompt(tokenizer, create_prompt(arc1_training[task_id], encoder,
                                                               "output-from-examples-v0", tokenizer), shown)
        samples.append({"input_ids": ids, "labels": labels})
    weight = model.model.layers[0].mlp.up_proj.weight
    for batch in (samples[:1], samples):
        full = PadCollator(tokenizer.pad_token_id)(batch)
        kept = with_labelled_logits_only(full)
        n_labelled = int((full["labels"][:, 1:] != IGNORE_INDEX).any(dim=0).sum())
        assert kept["logits_to_keep"].shape == (n_labelled,) and n_labelled < full["input_ids"].shape[1] - 1
        full_out, kept_out = model(**full), model(**kept)
        assert kept_out.logits.shape[1] == n_labelled
        torch.testing.assert_close(kept_out.loss, full_out.loss)
        full_grad = torch.autograd.grad(full_out.loss, weight)[0]
        torch.testing.assert_close(torch.autograd.grad(kept_out.loss, weight)[0], full_grad)


def test_lora_layers_adapts_only_the_last_layers_and_backward_stops_there(tiny_model_path):
    from arc24_lib.training import TrainingOptions, prepare_model

    options, path = dict(lora_r=4, device="cpu"), str(tiny_model_path)
    model = prepare_model(TrainingOptions(**options, lora_layers=1), "cpu", path)
    def adapted_layers(model) -> set[str]:
        return {name.split(".layers.")[1].split(".")[0] for name, _ in model.named_parameters() if "lora_" in name}

    assert adapted_layers(model) == {"1"}  # the tiny model has layers 0 and 1
    ids = torch.tensor([[5, 6, 7, 8]])
    lowest = model.base_model.model.model.layers[0]
    seen = []
    lowest.register_forward_hook(lambda module, args, output: seen.append(output))
    model(input_ids=ids, labels=ids).loss.backward()
    hidden = seen[0][0] if isinstance(seen[0], tuple) else seen[0]
    assert not hidden.requires_grad  # nothing below the adapted layer joins the backward pass
    everywhere = prepare_model(TrainingOptions(**options), "cpu", path)
    assert adapted_layers(everywhere) == {"0", "1"}
    assert adapted_layers(prepare_model(TrainingOptions(**options, lora_layers=3), "cpu", path)) == {"0", "1"}
    with pytest.raises(ValueError, match="2 decoder layers"):
        prepare_model(TrainingOptions(**options, lora_layers=0), "cpu", path)
    with pytest.raises(ValueError, match="adapter_path needs use_lora=True"):
        prepare_model(TrainingOptions(**options, use_lora=False), "cpu", path, adapter_path=path)


def test_samples_trim_then_skip_and_count(smollm2_tokenizer, arc1_training):
    task = arc1_training["007bbfb7"]  # five 3x3 -> 9x9 pairs, ~1000 tokens
    samples = TrainingSamples([SampleSource([task], "output-from-examples-v0")], parse_encoder(DEFAULT_ENCODER),
                              smollm2_tokenizer, max_seq_len=600, seed=0)
    batch = list(itertools.islice(samples, 5))
    assert all(len(sample["input_ids"]) <= 600 for sample in batch)
    assert samples.counts.trimmed == 5 and samples.counts.skipped == 0
    tiny = TrainingSamples([SampleSource([task], "output-from-examples-v0")], parse_encoder(DEFAULT_ENCODER),
                           smollm2_tokenizer, max_seq_len=100, seed=0, max_skips=20)
    with pytest.raises(RuntimeError, match="longer than max_seq_len 100"):
        next(iter(tiny))
    assert tiny.counts.skipped == 20


def test_fine_tune_tiny_model_halves_answer_loss(tmp_path, tiny_model_path, small_challenges, smollm2_tokenizer):
    config = FineTuningConfig(model_path=str(tiny_model_path), output_dir=str(tmp_path / "ft"), use_lora=False,
                              train_datasets=[(str(small_challenges), "output-from-examples-v0")],
                              max_steps=60, samples_per_step=2, learning_rate=3e-3, warmup_ratio=0.1,
                              logging_steps=10, save_steps=1000, max_seq_len=1024)
    tokenizer = load_tokenizer(tiny_model_path)
    from arc24_lib.data import load_dataset

    samples = fixed_samples(list(load_dataset(small_challenges)), "output-from-examples-v0",
                            parse_encoder(DEFAULT_ENCODER), tokenizer, 1024)
    before = answer_loss(load_model(tiny_model_path, device="cpu"), samples, tokenizer.pad_token_id)
    summary = fine_tune(config)
    after = answer_loss(load_model(tmp_path / "ft", device="cpu"), samples, tokenizer.pad_token_id)
    assert summary["global_step"] == 60
    assert after < before / 2, (before, after)
    saved = json.loads((tmp_path / "ft" / "fine_tuning_config.json").read_text())
    assert saved["max_steps"] == 60 and saved["train_datasets"][0][1] == "output-from-examples-v0"
    assert AutoTokenizer.from_pretrained(tmp_path / "ft").pad_token_id != tokenizer.eos_token_id


class StopAt(TrainerCallback):
    """Stands in for an interrupted run: stops training after `step`."""

    def __init__(self, step):
        self.step, self.steps_seen = step, []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps_seen.append(state.global_step)
        if state.global_step >= self.step:
            control.should_training_stop = True
        return control


def test_fine_tune_resumes_from_last_checkpoint(tmp_path, tiny_model_path, small_challenges):
    values = dict(model_path=str(tiny_model_path), output_dir=str(tmp_path / "ft"),
                  train_datasets=[(str(small_challenges), "output-from-examples-v1")], max_steps=8, samples_per_step=2,
                  per_device_train_batch_size=1, learning_rate=1e-3, logging_steps=1, save_steps=2, lora_r=4,
                  max_seq_len=1024)
    first = StopAt(4)
    fine_tune(FineTuningConfig(**values), callbacks=[first])
    assert first.steps_seen[-1] == 4 and (tmp_path / "ft" / "checkpoint-4" / "adapter_model.safetensors").exists()
    assert (tmp_path / "ft" / "checkpoint-4" / "tokenizer_config.json").exists()
    second = StopAt(1000)
    summary = fine_tune(FineTuningConfig(**values), callbacks=[second])
    assert summary["resumed_from"].endswith("checkpoint-4")
    assert second.steps_seen == [5, 6, 7, 8] and summary["global_step"] == 8


def test_merged_adapter_answers_like_base_plus_adapter(tmp_path, tiny_model_path, arc1_training):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"],
                                            init_lora_weights=False))  # random, non-zero adapter
    model.save_pretrained(tmp_path / "adapter")
    merged_path = merge_adapter(tiny_model_path, tmp_path / "adapter", tmp_path / "merged")
    tokenizer = load_tokenizer(tiny_model_path)
    prompt = create_prompt(arc1_training["6150a2bd"], parse_encoder(DEFAULT_ENCODER), "output-from-examples-v0",
                           tokenizer)
    inputs = tokenizer(prompt.text, return_tensors="pt", add_special_tokens=False)

    def greedy(m):
        out = m.generate(**inputs, max_new_tokens=24, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        return out[0, inputs["input_ids"].shape[1]:].tolist()

    with_adapter = greedy(load_model(tiny_model_path, tmp_path / "adapter", device="cpu"))
    merged = AutoModelForCausalLM.from_pretrained(merged_path)
    assert with_adapter == greedy(merged)
    assert with_adapter != greedy(AutoModelForCausalLM.from_pretrained(tiny_model_path))  # adapter matters


def test_extended_context_reloads_consistently_and_runs_past_old_length(tmp_path, smollm2_tokenizer):
    import copy

    from conftest import build_tiny_model

    folder = build_tiny_model(tmp_path / "short", copy.deepcopy(smollm2_tokenizer), max_position_embeddings=256)
    assert check_context(folder, 512)  # asking for more than the model has is reported
    problems = set_context_length(folder, 512, rope_theta=50000.0, rope_scaling={"rope_type": "linear", "factor": 2.0})
    assert problems == [] and check_context(folder, 512) == []
    config, tokenizer = AutoConfig.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    assert config.max_position_embeddings == tokenizer.model_max_length == 512
    assert config.rope_parameters["rope_type"] == "linear" and config.rope_parameters["factor"] == 2.0
    assert config.rope_parameters["rope_theta"] == 50000.0
    model = AutoModelForCausalLM.from_pretrained(folder)
    ids = torch.randint(10, 1000, (1, 400))
    logits = model(input_ids=ids).logits
    assert logits.shape == (1, 400, len(tokenizer)) and torch.isfinite(logits).all()
    # a tokenizer that disagrees with the config is caught
    tokenizer.model_max_length = 300
    tokenizer.save_pretrained(folder)
    assert any("differs" in problem for problem in check_context(folder))


def test_fine_tuning_config_rejects_typos_and_bad_values():
    with pytest.raises(ValueError, match="did you mean 'learning_rate'"):
        config_from_dict(FineTuningConfig, {"learningrate": 1e-4})
    with pytest.raises(ValueError, match="max_steps must be of type int"):
        config_from_dict(FineTuningConfig, {"max_steps": "10"})
    with pytest.raises(ValueError, match="multiple of per_device_train_batch_size"):
        FineTuningConfig(samples_per_step=3, per_device_train_batch_size=2)
    with pytest.raises(ValueError, match="unknown prompt version"):
        FineTuningConfig(train_datasets=[("arc-agi-1/training", "v7")])
    config = parse_config(FineTuningConfig, ["--train_datasets", "a.json", "output-from-examples-v1",
                                             "--train_datasets", "b.json", "input-from-inputs-v0",
                                             "--no-use_lora", "--max_steps", "5", "--lora_target_modules", "q_proj"])
    assert config.train_datasets == [("a.json", "output-from-examples-v1"), ("b.json", "input-from-inputs-v0")]
    assert config.use_lora is False and config.max_steps == 5 and config.lora_target_modules == ["q_proj"]
    assert config.gradient_accumulation_steps == 16
    with pytest.raises(SystemExit):
        parse_config(FineTuningConfig, ["--max_stepz", "5"])
    assert np.isclose(config.learning_rate, 1e-4)


def test_nested_configs_from_flags_json_and_dicts(tmp_path):
    from arc24_lib.augmentation import AugmentationConfig

    saved = tmp_path / "config.json"
    saved.write_text(json.dumps({"max_steps": 7, "augmentation": {"permute_colors": False, "geometric": False}}))
    config = parse_config(FineTuningConfig, ["--config", str(saved), "--augmentation.keep_rule_colors",
                                             "--augmentation.geometric"])
    # the file's nested values are merged with the flags', field by field; the rest keep their defaults
    assert config.max_steps == 7 and config.augmentation == AugmentationConfig(
        permute_colors=False, keep_rule_colors=True, geometric=True)
    assert load_config(FineTuningConfig, save_config(config, tmp_path / "again.json")) == config
    with pytest.raises(ValueError, match="unknown AugmentationConfig field.*did you mean 'permute_colors'"):
        config_from_dict(FineTuningConfig, {"augmentation": {"permute_color": False}})
    with pytest.raises(ValueError, match="augmentation must be a mapping of AugmentationConfig fields"):
        config_from_dict(FineTuningConfig, {"augmentation": True})
    with pytest.raises(SystemExit):
        parse_config(FineTuningConfig, ["--augmentation.permute_color"])


def _probe(tmp_path, folder, tiny_model_path, small_challenges, processes, max_steps):
    """Fine-tune through tests/batch_probe.py, in one process or under `accelerate launch`; its summary and
    each rank's list of batches (a crc32 per sample)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    probe = Path(__file__).parent / "batch_probe.py"
    flags = ["--model_path", str(tiny_model_path), "--train_datasets", str(small_challenges), "output-from-examples-v2",
             "--max_steps", str(max_steps), "--samples_per_step", "4", "--save_steps", "4", "--logging_steps", "1",
             "--lora_r", "8", "--learning_rate", "1e-2", "--warmup_ratio", "0", "--lr_scheduler_type", "constant",
             "--max_seq_len", "1024", "--output_dir", str(tmp_path / folder)]
    launcher = [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu", "--num_processes",
                str(processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    command = [*(launcher if processes > 1 else [sys.executable]), str(probe), *flags]
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = json.loads((tmp_path / folder / "train_summary.json").read_text())
    ranks = [[json.loads(line) for line in path.read_text().splitlines()]
             for path in sorted((tmp_path / folder).glob("batches_rank*.jsonl"))]
    return summary, ranks


def _logged_losses(tmp_path, folder, step):
    state = json.loads((tmp_path / folder / f"checkpoint-{step}" / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


def test_two_processes_split_every_batch_and_train_as_one_resuming_too(tmp_path, tiny_model_path, small_challenges):
    steps = 4
    one, (single,) = _probe(tmp_path, "one", tiny_model_path, small_challenges, 1, steps)
    two, (rank0, rank1) = _probe(tmp_path, "two", tiny_model_path, small_challenges, 2, steps)
    assert one["processes"] == 1 and two["processes"] == 2 and two["global_step"] == steps
    # batch 4 on 2 processes of 1 sample: 2 accumulation steps each (the loader may read one batch ahead)
    rank0, rank1, single = rank0[:2 * steps], rank1[:2 * steps], single[:4 * steps]
    assert all(len(batch) == 1 for batch in rank0 + rank1)
    seen0, seen1 = [s for b in rank0 for s in b], [s for b in rank1 for s in b]
    assert len(set(seen0 + seen1)) == len(seen0) + len(seen1)  # each rank sees different samples
    for step in range(steps):  # and together, step by step, the samples one process trains on
        shared = seen0[2 * step:2 * step + 2] + seen1[2 * step:2 * step + 2]
        assert sorted(shared) == sorted(s for b in single[4 * step:4 * step + 4] for s in b)
    # the same samples in the same effective batch: the same loss as one process
    assert two["train_loss"] == pytest.approx(one["train_loss"], abs=1e-4)
    losses = _logged_losses(tmp_path, "two", steps)
    assert len(losses) == steps and losses[-1] < losses[0]
    assert sorted(p.name for p in (tmp_path / "two").glob("checkpoint-*")) == [f"checkpoint-{steps}"]
    assert (tmp_path / "two" / "adapter_model.safetensors").exists()

    resumed, _ = _probe(tmp_path, "two", tiny_model_path, small_challenges, 2, 2 * steps)
    assert resumed["resumed_from"].endswith(f"checkpoint-{steps}") and resumed["global_step"] == 2 * steps
    assert sorted(p.name for p in (tmp_path / "two").glob("checkpoint-*")) == [f"checkpoint-{steps}",
                                                                              f"checkpoint-{2 * steps}"]
    # the resumed steps continue the stream and the optimizer: as one process that never stopped
    _probe(tmp_path, "straight", tiny_model_path, small_challenges, 1, 2 * steps)
    assert _logged_losses(tmp_path, "two", 2 * steps)[-steps:] == pytest.approx(
        _logged_losses(tmp_path, "straight", 2 * steps)[-steps:], abs=1e-4)


@pytest.mark.parametrize(("capability", "dtype", "precision"), [
    ((7, 5), "float16", "fp16"),  # T4 (Kaggle's GPU T4 x2): bf16 only through emulation
    ((6, 0), "float16", "fp16"),  # P100
    ((8, 9), "bfloat16", "bf16"),  # L4 (GPU L4 x4)
    ((9, 0), "bfloat16", "bf16"),  # H100
])
def test_gpu_precision_follows_the_compute_capability_not_emulated_bf16(monkeypatch, capability, dtype, precision):
    # No GPU here: torch.cuda answers as on each card. On a T4, torch 2.13's is_bf16_supported() says True
    # (emulation), and vLLM refuses bfloat16 below capability 8.0, which killed every Kaggle worker.
    from arc24_lib.inference.vllm import gpu_dtype
    from arc24_lib.models import default_dtype
    from arc24_lib.training import resolve_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert gpu_dtype() == dtype
    assert default_dtype("cuda") == getattr(torch, dtype)
    assert resolve_precision("auto", "cuda") == precision
    assert resolve_precision("fp32", "cuda") == "fp32"


def test_resumed_training_ends_exactly_where_an_uninterrupted_run_does(tmp_path, tiny_model_path, small_challenges):
    from safetensors.torch import load_file

    values = dict(model_path=str(tiny_model_path), train_datasets=[(str(small_challenges), "output-from-examples-v1")],
                  max_steps=6, samples_per_step=2, learning_rate=1e-3, logging_steps=1, save_steps=3, lora_r=4,
                  max_seq_len=1024)
    fine_tune(FineTuningConfig(**values, output_dir=str(tmp_path / "whole")))
    fine_tune(FineTuningConfig(**values, output_dir=str(tmp_path / "cut")), callbacks=[StopAt(3)])
    resumed = fine_tune(FineTuningConfig(**values, output_dir=str(tmp_path / "cut")))
    assert resumed["resumed_from"].endswith("checkpoint-3")
    whole, cut = (load_file(tmp_path / name / "adapter_model.safetensors") for name in ("whole", "cut"))
    assert whole.keys() == cut.keys() and all(torch.equal(whole[name], cut[name]) for name in whole)


def test_held_out_tasks_are_never_trained_on_and_validated_by_vote(tmp_path, tiny_model_path, small_challenges,
                                                                   arc1_training):
    from arc24_lib.data import load_dataset
    from arc24_lib.training import PLOT_FILE, TRAIN_TASKS_FILE, VALIDATION_FILE
    from arc24_lib.validation import VoteValidation

    held_out = save_dataset(subset_by_ids(arc1_training, ["0d3d703e"]), tmp_path / "dev_challenges.json")
    values = dict(model_path=str(tiny_model_path), output_dir=str(tmp_path / "ft"), lora_r=4, max_seq_len=1024,
                  train_datasets=[(str(small_challenges), "output-from-examples-v1")], leave_one_out=True,
                  val_dataset=(str(held_out), "output-from-examples-v1"), max_steps=4,
                  samples_per_step=1, logging_steps=1, save_steps=2, eval_steps=2)

    def run(config):
        return fine_tune(config, callbacks=[VoteValidation(load_dataset(held_out), config, predictions=2)])

    run(FineTuningConfig(**values))
    trained = json.loads((tmp_path / "ft" / TRAIN_TASKS_FILE).read_text())
    assert trained == {str(small_challenges): ["6150a2bd", "74dd1130"]}
    validation = [json.loads(line) for line in (tmp_path / "ft" / VALIDATION_FILE).read_text().splitlines()]
    assert [record["step"] for record in validation] == [0, 2, 4]  # before training, then every checkpoint
    assert all(record["tasks"] == 1 and 0 <= record["vote_2"] <= record["pass_n"] <= 1 for record in validation)
    assert validation[0]["eval_loss"] is None and validation[1]["eval_loss"] > 0
    history = json.loads((tmp_path / "ft" / "checkpoint-4" / "trainer_state.json").read_text())["log_history"]
    assert [entry["step"] for entry in history if "eval_loss" in entry] == [0, 2, 4]  # from before training
    predictions = tmp_path / "ft" / "validation" / "step-2" / "predictions.jsonl"
    assert len(predictions.read_text().splitlines()) == 2  # greedy, two augmentations of its one test input
    assert (tmp_path / "ft" / PLOT_FILE).stat().st_size > 0
    # a crash between the step-4 save and its validation: the resumed run validates step 4 first
    (tmp_path / "ft" / VALIDATION_FILE).write_text("".join(json.dumps(r) + "\n" for r in validation[:2]))
    run(FineTuningConfig(**{**values, "max_steps": 6}))  # resumed: the steps validated before stay
    steps = [json.loads(line)["step"] for line in (tmp_path / "ft" / VALIDATION_FILE).read_text().splitlines()]
    assert steps == [0, 2, 4, 6]
    with pytest.raises(ValueError, match="val_dataset"):
        VoteValidation(load_dataset(held_out), FineTuningConfig(), predictions=2)


def test_every_config_prints_its_flags_help():
    """--help formats every field's help (argparse reads a bare % in it as a format)."""
    from arc24_lib.config import config_parser
    from arc24_lib.inference.airv import InferenceConfig
    from arc24_lib.kaggle.run import KaggleRunConfig
    from arc24_lib.solve import SolveConfig
    from arc24_lib.test_time import TestTimeConfig

    for cls in (SolveConfig, FineTuningConfig, TestTimeConfig, InferenceConfig, KaggleRunConfig):
        assert "--" in config_parser(cls).format_help()  # raised ValueError on a bare % before
    assert "7% more steps" in " ".join(config_parser(TestTimeConfig).format_help().split())
