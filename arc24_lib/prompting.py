"""Prompt versions, chat rendering through the tokenizer's template, answer parsing, token budgets (R2, R3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from arc24_lib.data import MAX_SIDE, N_COLORS, Dataset, Example, Grid, Task
from arc24_lib.encoders import GridEncoder

PROMPT_VERSIONS = (
    "output-from-examples-v0",
    "output-from-examples-v1",
    "output-from-examples-v2",
    "input-from-inputs-v0",
    "output-from-outputs-v0",
)
# the lean version: a third fewer tokens than v0 on tiny tasks, so more test-time steps fit a budget
DEFAULT_PROMPT_VERSION = "output-from-examples-v2"

# ChatML, for tokenizers that ship no chat template of their own (base models).
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

SYSTEM_PROMPT = (
    "You are a careful solver of abstract visual puzzles. Grids are written as text, one digit "
    "per colour (0-9); answer with a grid in exactly the same format."
)
# The lean version's system message: a short one of our own, since an absent one makes
# SmolLM2's template insert its default (15 tokens).
LEAN_SYSTEM_PROMPT = "ARC puzzle"


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt: `text` ends where the model's answer starts; `answer` is the rendered
    answer with the end-of-turn token ("" when the target grid is unknown)."""

    text: str
    answer: str
    target: Grid | None
    prompt_version: str
    grid_spans: tuple[tuple[int, int], ...] = ()  # character spans in `text` of the shown grids a model
    # could learn to write too (the train outputs); tokenize_prompt can put labels on them


_Built = tuple[str, "Grid | None", list[tuple[int, int]]]


class _Lines:
    """Lines joined by newlines, remembering where the marked ones start and end."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.spans: list[tuple[int, int]] = []
        self.length = -1  # no newline before the first line

    def add(self, *lines: str, mark: bool = False) -> None:
        for line in lines:
            start = self.length + 1
            self.lines.append(line)
            self.length = start + len(line)
            if mark:
                self.spans.append((start, self.length))

    def build(self, target: Grid | None) -> tuple[str, Grid | None, list[tuple[int, int]]]:
        return "\n".join(self.lines), target, self.spans


# --- the four prompt versions: task → (user message, target grid, spans of learnable grids) ----

def _examples_with_outputs(task: Task, encoder: GridEncoder, test_index: int) -> _Built:
    lines = _Lines()
    lines.add("Each example below turns an input grid into an output grid by the same hidden rule.",
              "Find the rule, then write the output grid for the test input.")
    for number, example in enumerate(task.train, start=1):
        lines.add(f"\n## Example {number}", "\n### Input", encoder.to_text(example.input), "\n### Output")
        lines.add(encoder.to_text(example.output), mark=True)
    test = task.test[test_index]
    lines.add("\n## Test case", "\n### Input", encoder.to_text(test.input))
    return lines.build(test.output)


def _examples_compact(task: Task, encoder: GridEncoder, test_index: int) -> _Built:
    lines = _Lines()
    lines.add("Solve the puzzle: apply the rule shown by the examples to the last input.")
    for number, example in enumerate(task.train, start=1):
        lines.add(f"\ninput {number}:", encoder.to_text(example.input), f"output {number}:")
        lines.add(encoder.to_text(example.output), mark=True)
    test = task.test[test_index]
    lines.add("\ntest input:", encoder.to_text(test.input), "test output:")
    return lines.build(test.output)


def _examples_lean(task: Task, encoder: GridEncoder, test_index: int) -> _Built:
    """The fewest words around the grids: more test-time steps fit in a time budget."""
    lines = _Lines()
    for example in task.train:
        lines.add("in", encoder.to_text(example.input), "out")
        lines.add(encoder.to_text(example.output), mark=True)
    test = task.test[test_index]
    lines.add("in", encoder.to_text(test.input), "out")
    return lines.build(test.output)


def _grids_like(kind: str, grids: list[Grid], encoder: GridEncoder, target: Grid | None) -> _Built:
    lines = _Lines()
    lines.add(f"The grids below are {kind} grids of one puzzle; they share a common structure.",
              f"Write one more {kind} grid that could belong to the same puzzle.")
    for number, grid in enumerate(grids, start=1):
        lines.add(f"\n## Grid {number}")
        lines.add(encoder.to_text(grid), mark=True)
    return lines.build(target)


def _inputs_from_inputs(task: Task, encoder: GridEncoder, test_index: int) -> _Built:
    shown = [example.input for example in task.train]
    return _grids_like("input", shown, encoder, task.test[test_index].input)


def _outputs_from_outputs(task: Task, encoder: GridEncoder, test_index: int) -> _Built:
    shown = [example.output for example in task.train]
    return _grids_like("output", shown, encoder, task.test[test_index].output)


_BUILDERS: dict[str, Callable[[Task, GridEncoder, int], _Built]] = {
    "output-from-examples-v0": _examples_with_outputs,
    "output-from-examples-v1": _examples_compact,
    "output-from-examples-v2": _examples_lean,
    "input-from-inputs-v0": _inputs_from_inputs,
    "output-from-outputs-v0": _outputs_from_outputs,
}
_SYSTEM_PROMPTS = {"output-from-examples-v2": LEAN_SYSTEM_PROMPT}  # the others: SYSTEM_PROMPT


def check_prompt_version(prompt_version: str) -> None:
    """Raise ValueError for an unknown prompt version."""
    if prompt_version not in _BUILDERS:
        raise ValueError(f"unknown prompt version {prompt_version!r}; choose one of {', '.join(PROMPT_VERSIONS)}")


# --- chat rendering ---------------------------------------------------------------------

def render_chat(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    """Render chat messages as text with the tokenizer's template, or ChatML when it has none."""
    template = None if getattr(tokenizer, "chat_template", None) else DEFAULT_CHAT_TEMPLATE
    return tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False,
                                         add_generation_prompt=add_generation_prompt)


def create_prompt(task: Task, encoder: GridEncoder, prompt_version: str, tokenizer: Any,
                  test_index: int = 0) -> Prompt:
    """Render the prompt for one test input of a task; the answer is rendered when the target is known."""
    check_prompt_version(prompt_version)
    if not 0 <= test_index < len(task.test):
        raise IndexError(f"task {task.task_id} has {len(task.test)} test inputs, no index {test_index}")
    user, target, spans = _BUILDERS[prompt_version](task, encoder, test_index)
    system = _SYSTEM_PROMPTS.get(prompt_version, SYSTEM_PROMPT)
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    text = render_chat(tokenizer, messages, add_generation_prompt=True)
    offset = text.find(user)
    grid_spans = tuple((start + offset, end + offset) for start, end in spans) if offset >= 0 else ()
    if target is None:
        return Prompt(text, "", None, prompt_version, grid_spans)
    full = render_chat(tokenizer, [*messages, {"role": "assistant", "content": encoder.to_text(target)}],
                       add_generation_prompt=False)
    if not full.startswith(text):
        raise ValueError("the chat template renders the conversation differently with and without the "
                         "answer; set tokenizer.chat_template to a template that appends the assistant turn")
    answer = full[len(text):]
    eos = tokenizer.eos_token
    if eos and eos in answer:  # keep the end token, drop what the template writes after it
        answer = answer[: answer.index(eos) + len(eos)]
    return Prompt(text, answer, target, prompt_version, grid_spans)


def parse_answer(text: str, encoder: GridEncoder, end_tokens: tuple[str, ...] = ()) -> Grid | None:
    """The grid in a model's answer, or None when it is not a valid ARC grid in the encoder's format."""
    for token in end_tokens:
        if token and token in text:
            text = text[: text.index(token)]
    try:
        grid = np.asarray(encoder.to_grid(text))
    except (ValueError, IndexError, KeyError):
        return None
    if grid.ndim != 2 or not (1 <= grid.shape[0] <= MAX_SIDE and 1 <= grid.shape[1] <= MAX_SIDE):
        return None
    if grid.size and (grid.min() < 0 or grid.max() >= N_COLORS):
        return None
    return grid


# --- token budgets ----------------------------------------------------------------------

IGNORE_INDEX = -100  # label of tokens that carry no loss


def tokenize_prompt(tokenizer: Any, prompt: Prompt, label_shown_grids: bool = False) -> tuple[list[int], list[int]]:
    """(input ids, labels) of prompt + answer; labels are IGNORE_INDEX on every prompt token, except,
    with `label_shown_grids`, on the tokens of the train outputs shown in the prompt.

    Prompt and answer are tokenized apart, so the prompt's ids are exactly those a model is
    given at inference, and the loss falls on the answer tokens (end token included). Labelling
    the shown outputs as well gives a test-time step several targets for the price of one.
    """
    if label_shown_grids and prompt.grid_spans:
        encoded = tokenizer(prompt.text, add_special_tokens=False, return_offsets_mapping=True)
        prompt_ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
        prompt_labels = [token if any(start <= first and last <= end for start, end in prompt.grid_spans)
                         else IGNORE_INDEX for token, (first, last) in zip(prompt_ids, offsets, strict=True)]
    else:
        prompt_ids = tokenizer(prompt.text, add_special_tokens=False)["input_ids"]
        prompt_labels = [IGNORE_INDEX] * len(prompt_ids)
    answer_ids = tokenizer(prompt.answer, add_special_tokens=False)["input_ids"] if prompt.answer else []
    return prompt_ids + answer_ids, prompt_labels + answer_ids


def count_tokens(tokenizer: Any, prompt: Prompt) -> int:
    """Number of tokens of the prompt plus its answer, as the model sees them in training."""
    return len(tokenize_prompt(tokenizer, prompt)[0])


def fit_prompt(task: Task, encoder: GridEncoder, prompt_version: str, tokenizer: Any, max_seq_len: int,
               test_index: int = 0) -> tuple[Prompt | None, int]:
    """The prompt with as many train pairs as fit in `max_seq_len` tokens (dropping the longest first).

    Returns (prompt or None when even one train pair is too long, number of train pairs dropped).
    """
    train = list(task.train)
    dropped = 0
    while True:
        prompt = create_prompt(replace(task, train=train), encoder, prompt_version, tokenizer, test_index)
        if count_tokens(tokenizer, prompt) <= max_seq_len:
            return prompt, dropped
        if len(train) == 1:
            return None, dropped
        longest = max(range(len(train)), key=lambda i: _pair_cells(train[i]))
        train.pop(longest)
        dropped += 1


def _pair_cells(example: Example) -> int:
    return example.input.size + (0 if example.output is None else example.output.size)


def token_report(dataset: Dataset, encoder: GridEncoder, tokenizer: Any, prompt_version: str,
                 max_lengths: tuple[int, ...] = (2048, 4096, 8192)) -> dict[str, Any]:
    """Tokens per prompt (one per test input) over a dataset, and the share that fits each max length."""
    lengths = np.array([count_tokens(tokenizer, create_prompt(task, encoder, prompt_version, tokenizer, i))
                        for task in dataset for i in range(len(task.test))])
    return {
        "prompts": int(lengths.size),
        "median": float(np.median(lengths)),
        "p90": float(np.percentile(lengths, 90)),
        "max": int(lengths.max()),
        "fits": {n: float(np.mean(lengths <= n)) for n in max_lengths},
        "lengths": lengths,
    }
