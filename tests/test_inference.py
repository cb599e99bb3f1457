import json
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest

from arc24_lib.augmentation import augment_grid, augment_task
from arc24_lib.encoders import DEFAULT_ENCODER, parse_encoder
from arc24_lib.evaluation import evaluate
from arc24_lib.files import read_records
from arc24_lib.inference import BackendPool, make_backend
from arc24_lib.inference.airv import InferenceConfig, plan_predictions, run_airv
from arc24_lib.inference.backend import Generation, GenerationConfig
from arc24_lib.partitions import subset_by_ids
from arc24_lib.selection import select_attempts
from arc24_lib.task_format import TaskFormat

# small tasks, two with several test inputs, several with non-square grids
TASK_IDS = ["6150a2bd", "0d3d703e", "74dd1130", "e9afcf9a", "d631b094", "44f52bb0", "27a28665", "a85d4709"]


def hidden(dataset):
    """The dataset as a competition shows it: test outputs removed."""
    return dataset.without_solutions()


class OracleBackend:
    """A stand-in model: answers each augmented prompt with the augmented true output (no language model)."""

    def __init__(self, dataset, config, task_format, tokenizer):
        encoder = task_format.encoder
        self.answers = {}
        for task in dataset:
            for planned in plan_predictions(task, config, task_format, tokenizer):
                augmented = augment_task(task, planned.augmentation)
                self.answers[planned.prompt] = encoder.to_text(augmented.test[planned.test_index].output)

    def generate(self, prompts, config, adapter_path=None, max_new_tokens=None):
        return [Generation(self.answers[p], [1, 2], -0.5, 2) for p in prompts]


def test_airv_reverts_every_augmentation_exactly(tmp_path, arc1_training, smollm2_tokenizer):
    tasks = subset_by_ids(arc1_training, TASK_IDS)
    assert any(len(task.test) > 1 for task in tasks)
    config = InferenceConfig(output_dir=str(tmp_path), predictions_per_test_input=16, prompts_per_call=5)
    oracle = OracleBackend(tasks, config, TaskFormat(), smollm2_tokenizer)
    path = run_airv(hidden(tasks), config, TaskFormat(), backend=oracle, tokenizer=smollm2_tokenizer)
    records = read_records(path)
    assert len(records) == 16 * sum(len(task.test) for task in tasks)
    assert len({r["augmentation"]["geometry"] for r in records}) == 8
    for record in records:
        truth = tasks[record["task_id"]].test[record["test_index"]].output
        assert np.array_equal(record["grid"], truth), record["augmentation"]
    attempts = select_attempts(records, {t.task_id: len(t.test) for t in tasks})
    result = evaluate(records, attempts, tasks)
    assert result["summary"]["accuracy"] == 1.0 and result["summary"]["vote_1"] == 1.0
    assert result["summary"]["unanswered"] == 0.0 and result["n_tasks"] == len(TASK_IDS)


def test_hf_backend_batched_equals_one_at_a_time(tiny_backend, arc1_training):
    encoder = parse_encoder(DEFAULT_ENCODER)
    from arc24_lib.prompting import create_prompt

    prompts = [create_prompt(t.without_solutions(), encoder, "output-from-examples-v0", tiny_backend.tokenizer).text
               for t in subset_by_ids(arc1_training, TASK_IDS)]
    prompts.append("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")  # far shorter: much left padding
    config = GenerationConfig(max_new_tokens=12)
    batched = tiny_backend.generate(prompts, config)
    single = [tiny_backend.generate([p], config)[0] for p in prompts]
    assert [g.text for g in batched] == [g.text for g in single]
    assert [g.token_ids for g in batched] == [g.token_ids for g in single]
    for b, s in zip(batched, single, strict=True):
        assert b.n_tokens == len(b.token_ids) <= 12 and b.cumulative_logprob < 0
        assert b.cumulative_logprob == pytest.approx(s.cumulative_logprob, abs=1e-3)
    sampled = GenerationConfig(max_new_tokens=6, temperature=1.0, seed=3)
    first, again = tiny_backend.generate(prompts[:3], sampled), tiny_backend.generate(prompts[:3], sampled)
    assert [g.token_ids for g in first] == [g.token_ids for g in again]  # seeded sampling repeats
    assert all(0 < g.n_tokens <= 6 and g.cumulative_logprob < 0 for g in first)
    # a limit per prompt gives each answer exactly as its own limit alone would
    limits = [3, 12, 7, 1, 12, 5, 9, 2, 4][:len(prompts)]
    limited = tiny_backend.generate(prompts, config, max_new_tokens=limits)
    for generation, limit, prompt in zip(limited, limits, prompts, strict=True):
        alone = tiny_backend.generate([prompt], GenerationConfig(max_new_tokens=limit))[0]
        assert generation.token_ids == alone.token_ids and len(generation.token_ids) <= limit


def test_hf_score_equals_a_full_forward_pass_batched_or_not(tiny_backend, arc1_training):
    import torch

    from arc24_lib.prompting import create_prompt

    encoder, tokenizer = parse_encoder(DEFAULT_ENCODER), tiny_backend.tokenizer
    prompts = [create_prompt(t, encoder, "output-from-examples-v0", tokenizer, i)
               for t in subset_by_ids(arc1_training, TASK_IDS[:5]) for i in range(len(t.test))]
    texts, answers = [p.text for p in prompts], [p.answer for p in prompts]
    batched = tiny_backend.score(texts, answers)
    assert [tiny_backend.score([t], [a])[0] for t, a in zip(texts, answers, strict=True)] == pytest.approx(batched,
                                                                                                          abs=1e-3)
    shared = [texts[0]] * len(answers)  # one prompt, many answers: its cache is shared
    assert tiny_backend.score(shared, answers) == pytest.approx(
        [tiny_backend.score([texts[0]], [a])[0] for a in answers], abs=1e-3)
    for text, answer, score in zip(texts[:3], answers[:3], batched[:3], strict=True):
        prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = tiny_backend.model(input_ids=torch.tensor([prompt_ids + answer_ids])).logits[0]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        expected = sum(float(logprobs[len(prompt_ids) - 1 + j, token]) for j, token in enumerate(answer_ids))
        assert score == pytest.approx(expected, abs=1e-3) and score < 0


def test_augmented_scoring_is_a_stage_after_airv_writes_scores_once_and_ranks_by_them(tmp_path, tiny_backend,
                                                                                       tiny_model_path, arc1_training):
    from arc24_lib.inference.records import read_scores
    from arc24_lib.pipeline import vote_and_report
    from arc24_lib.solve import infer

    tasks = subset_by_ids(arc1_training, ["6150a2bd", "e9afcf9a"])
    config = tiny_config(tmp_path, predictions_per_test_input=4, max_new_tokens=None)
    task_format = tiny_format(tiny_model_path)
    encoder = task_format.encoder
    answers = {}  # prompt → the true answer and two fixed wrong grids, all in the prompt's frame
    for task in tasks:
        seen = Counter()
        for planned in plan_predictions(task, config, task_format, tiny_backend.tokenizer):
            truth, shift = task.test[planned.test_index].output, seen[planned.test_index] % 3
            seen[planned.test_index] += 1
            answers[planned.prompt] = encoder.to_text(augment_grid((truth + shift) % 10, planned.augmentation))

    class ThreeMinds:
        """Writes the true answer or one of two fixed wrong grids, the test input's prompts in turn (three
        grids for two attempts: scoring decides); scores with the tiny model."""

        tokenizer = tiny_backend.tokenizer

        def generate(self, prompts, generation_config, adapter_path=None, max_new_tokens=None):
            return [Generation(answers[p], [1], -1.0, 1) for p in prompts]

        def score(self, prompts, answers, adapter_path=None):
            return tiny_backend.score(prompts, answers, adapter_path)

    path = run_airv(hidden(tasks), config, task_format, backend=ThreeMinds())
    assert not (tmp_path / "scores.jsonl").exists()  # AIRV only predicts; scoring is the next stage
    assert infer(hidden(tasks), config, task_format, backend=ThreeMinds()) == path  # nothing left: it scores
    lines = (tmp_path / "scores.jsonl").read_text().splitlines()
    scores = read_scores(tmp_path / "scores.jsonl")
    assert set(scores) == {(t.task_id, i) for t in tasks for i in range(len(t.test))}
    assert all(len(grids) == 3 for grids in scores.values())
    for line in map(json.loads, lines):  # each prompt's log-probability is kept, and the score is their mean
        assert line["n_prompts"] == len(line["logprobs"]) == 4 and all(lp < 0 for lp in line["logprobs"])
        assert line["score"] == pytest.approx(sum(line["logprobs"]) / 4)
    infer(hidden(tasks), config, task_format, backend=ThreeMinds())  # a rerun scores nothing again
    assert (tmp_path / "scores.jsonl").read_text().splitlines() == lines
    outputs = vote_and_report(tasks, path, tmp_path / "report")
    attempts = json.loads(outputs["attempts"].read_text())
    for (task_id, test_index), grids in scores.items():
        assert tuple(map(tuple, attempts[task_id][test_index][0])) == max(grids, key=grids.get)


def tiny_config(tmp_path, **overrides):
    values = dict(output_dir=str(tmp_path), predictions_per_test_input=3, prompts_per_call=2, max_new_tokens=10,
                  device="cpu")
    values.update(overrides)
    return InferenceConfig(**values)


def tiny_format(model_path):
    return TaskFormat(model_path=str(model_path))


def test_a_pool_shares_a_backend_between_configs_that_differ_only_in_how_they_predict(tiny_model_path):
    pool, path = BackendPool(), str(tiny_model_path)
    base = InferenceConfig(device="cpu", prompts_per_call=4)
    other_predictions = InferenceConfig(device="cpu", prompts_per_call=4, predictions_per_test_input=3,
                                        generator="sampling", output_dir="elsewhere")
    shared = pool.get(base, path)
    assert pool.get(other_predictions, path) is shared and len(pool) == 1
    smaller_batches = pool.get(InferenceConfig(device="cpu", prompts_per_call=2), path)
    assert smaller_batches is not shared and smaller_batches.prompts_per_call == 2 and len(pool) == 2
    # vLLM's own settings are no part of an hf backend's key: they change nothing it reads
    assert pool.get(InferenceConfig(device="cpu", prompts_per_call=4, gpu_memory_utilization=0.5,
                                    enforce_eager=True), path) is shared


def test_airv_interrupted_then_resumed_equals_uninterrupted(tmp_path, tiny_backend, tiny_model_path, arc1_training):
    tasks = hidden(subset_by_ids(arc1_training, TASK_IDS[:4]))
    task_format = tiny_format(tiny_model_path)
    full = read_records(run_airv(tasks, tiny_config(tmp_path / "full"), task_format, backend=tiny_backend))
    assert len(full) == 3 * sum(len(t.test) for t in tasks)
    config = tiny_config(tmp_path / "resumed")
    run_airv(tasks, config, task_format, backend=tiny_backend, stop_after=5)
    assert 5 <= len(read_records(tmp_path / "resumed" / "predictions.jsonl")) < len(full)
    resumed = read_records(run_airv(tasks, config, task_format, backend=tiny_backend))
    key = lambda r: (r["task_id"], r["test_index"], r["augmentation_index"])  # noqa: E731
    assert len({key(r) for r in resumed}) == len(resumed) == len(full)
    assert sorted(resumed, key=key) == sorted(full, key=key)


def test_airv_killed_process_then_resumed(tmp_path, tiny_backend, tiny_model_path, arc1_training):
    tasks = hidden(subset_by_ids(arc1_training, TASK_IDS[:4]))
    from arc24_lib.config import save_config
    from arc24_lib.data import save_dataset

    challenges = save_dataset(tasks, tmp_path / "tasks_challenges.json", with_solutions=False)
    task_format = tiny_format(tiny_model_path)
    full = read_records(run_airv(tasks, tiny_config(tmp_path / "full"), task_format, backend=tiny_backend))
    config = tiny_config(tmp_path / "killed")
    config_path = save_config(config, tmp_path / "killed_config.json")
    format_path = save_config(task_format, tmp_path / "killed_format.json")
    script = ("import sys; from arc24_lib.config import load_config; from arc24_lib.data import load_dataset;"
              "from arc24_lib.inference.airv import InferenceConfig, run_airv;"
              "from arc24_lib.task_format import TaskFormat;"
              "run_airv(load_dataset(sys.argv[1]), load_config(InferenceConfig, sys.argv[2]),"
              " load_config(TaskFormat, sys.argv[3]))")
    process = subprocess.Popen([sys.executable, "-c", script, str(challenges), str(config_path), str(format_path)],
                               stderr=subprocess.DEVNULL)
    path = tmp_path / "killed" / "predictions.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not path.exists() or len(path.read_text().splitlines()) < 4):
        time.sleep(0.05)
    process.kill()
    process.wait()
    assert 4 <= len(read_records(path)) < len(full)
    with open(path, "a") as file:  # a line cut in half by the kill
        file.write('{"task_id": "6150a2bd", "test_in')
    resumed = read_records(run_airv(tasks, config, task_format, backend=tiny_backend))
    key = lambda r: (r["task_id"], r["test_index"], r["augmentation_index"])  # noqa: E731
    assert sorted(resumed, key=key) == sorted(full, key=key)


def test_airv_one_failing_task_does_not_sink_the_run(tmp_path, tiny_model_path, arc1_training, tiny_backend):
    tasks = hidden(subset_by_ids(arc1_training, ["6150a2bd", "0d3d703e", "74dd1130"]))
    config, task_format = tiny_config(tmp_path), tiny_format(tiny_model_path)
    poisoned = {p.prompt for p in plan_predictions(tasks["0d3d703e"], config, task_format, tiny_backend.tokenizer)}

    class Flaky:
        """Fails on every call that holds a prompt of task 0d3d703e."""

        tokenizer = tiny_backend.tokenizer

        def generate(self, prompts, generation_config, adapter_path=None, max_new_tokens=None):
            if poisoned & set(prompts):
                raise RuntimeError("out of memory")
            return tiny_backend.generate(prompts, generation_config, adapter_path, max_new_tokens)

    path = run_airv(tasks, config, task_format, backend=Flaky())
    records = read_records(path)
    assert {r["task_id"] for r in records} == {"6150a2bd", "74dd1130"} and len(records) == 6
    failure = json.loads((tmp_path / "failures.jsonl").read_text().splitlines()[0])
    assert failure["task_id"] == "0d3d703e" and "out of memory" in failure["error"]


def test_inference_past_its_deadline_makes_only_first_predictions_and_still_selects(tmp_path, arc1_training,
                                                                                    smollm2_tokenizer):
    """One slow task cannot take the next tasks' time: past the deadline each test input still gets its first
    prediction (the task as given), the other prompts are cut, scoring stops, and the attempts are selected
    from what was predicted."""
    from dataclasses import replace

    from arc24_lib.inference.scoring import score_predictions
    from arc24_lib.pipeline import vote_and_report
    from arc24_lib.solve import infer

    tasks, task_format = subset_by_ids(arc1_training, ["44f52bb0"]), TaskFormat()  # two test inputs
    config = InferenceConfig(output_dir=str(tmp_path / "cut"), predictions_per_test_input=4, prompts_per_call=1)
    answers = {}  # the first prompt of a test input answered right, the others each with its own wrong grid
    for planned in plan_predictions(tasks["44f52bb0"], config, task_format, smollm2_tokenizer):
        truth = tasks["44f52bb0"].test[planned.test_index].output
        answers[planned.prompt] = task_format.encoder.to_text(
            augment_grid((truth + planned.augmentation_index) % 10, planned.augmentation))
    scored = []

    class Slow:
        tokenizer, delay = smollm2_tokenizer, 1.5

        def generate(self, prompts, generation_config, adapter_path=None, max_new_tokens=None):
            time.sleep(self.delay)
            return [Generation(answers[p], [1], -1.0, 1) for p in prompts]

        def score(self, prompts, answer_texts, adapter_path=None):
            scored.extend(prompts)
            return [-1.0] * len(prompts)

    path = infer(hidden(tasks), config, task_format, Slow(), deadline=time.perf_counter() + 1.0)
    records = read_records(path)
    assert sorted((r["test_index"], r["augmentation_index"]) for r in records) == [(0, 0), (1, 0)]
    attempts = json.loads(vote_and_report(tasks, path, tmp_path / "report")["attempts"].read_text())
    assert [attempt[0] for attempt in attempts["44f52bb0"]] == [t.output.tolist() for t in tasks["44f52bb0"].test]
    # without a deadline every prompt is made and the four candidates of each test input are scored
    fast, full = Slow(), replace(config, output_dir=str(tmp_path / "full"))
    fast.delay = 0.0
    assert len(read_records(infer(hidden(tasks), full, task_format, fast))) == 8 and scored
    (tmp_path / "full" / "scores.jsonl").unlink()
    scored.clear()
    score_predictions(hidden(tasks), full, task_format, fast, deadline=time.perf_counter())  # no time left
    assert not scored and not read_records(tmp_path / "full" / "scores.jsonl")


def test_vllm_backend_absent_gives_clear_error_and_library_works():
    pytest.importorskip("arc24_lib.inference.hf")
    try:
        import vllm  # noqa: F401
        pytest.skip("vllm is installed here")
    except ImportError:
        pass
    import arc24_lib.evaluation  # noqa: F401
    import arc24_lib.inference.airv  # noqa: F401
    import arc24_lib.submission  # noqa: F401
    import arc24_lib.training  # noqa: F401

    with pytest.raises(ImportError, match="requirements-gpu.txt"):
        make_backend("vllm", "embedded")
    with pytest.raises(ValueError, match="unknown backend"):
        make_backend("onnx")


def test_predict_end_to_end_with_embedded_model(tmp_path, arc1_training):
    """The real SmolLM2 on three small real tasks: predictions, voted submission and metrics are written."""
    from arc24_lib.partitions import smallest_tasks
    from arc24_lib.pipeline import predict
    from arc24_lib.submission import validate_submission

    tasks = smallest_tasks(arc1_training, 3)
    config = InferenceConfig(output_dir=str(tmp_path), predictions_per_test_input=2, prompts_per_call=8, device="cpu")
    outputs = predict(tasks, config)
    records = read_records(outputs["submission"].parent / "predictions.jsonl")
    assert len(records) == 2 * sum(len(t.test) for t in tasks) == outputs["n_predictions"]
    assert all(r["n_tokens"] > 0 and r["text"] for r in records)
    submission = json.loads(outputs["submission"].read_text())
    assert validate_submission(submission, tasks) == []
    metrics = json.loads(outputs["metrics"].read_text())
    assert set(metrics["per_task"]) == set(tasks.task_ids) and 0.0 <= metrics["summary"]["accuracy"] <= 1.0
    assert (tmp_path / "report.md").exists() and len(list((tmp_path / "pictures").glob("*.png"))) == 3
