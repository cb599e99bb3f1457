"""Hugging Face transformers backend: batched generation with left padding and KV cache, CPU or GPU."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from arc24_lib.inference.backend import Generation, GenerationConfig, SearchConfig, answer_limits
from arc24_lib.inference.dfs import as_generation, search_batch
from arc24_lib.inference.shape_hold import ShapeHold, ShapeHolds
from arc24_lib.models import default_device, load_model, load_tokenizer
from arc24_lib.vocabulary import load_vocabulary

logger = logging.getLogger(__name__)


class HFBackend:
    """Generation with `model.generate`; prompts are grouped by length into batches of `prompts_per_call`."""

    def __init__(self, model_path: str = "embedded", device: str | None = None, dtype: Any = None,
                 prompts_per_call: int = 16):
        self.device = device or default_device()
        self.tokenizer = load_tokenizer(model_path)
        self.tokenizer.padding_side = "left"  # new tokens must follow every prompt directly
        self.model = load_model(model_path, device=self.device, dtype=dtype).eval()
        self.prompts_per_call = prompts_per_call
        self.adapter_path: str | None = None
        self.kept_mask: torch.Tensor | None = None  # 0 on the adapter's kept tokens, -inf elsewhere
        self.holds = ShapeHolds(self.tokenizer)

    def _use_adapter(self, adapter_path: str | Path | None) -> None:
        """Load a LoRA adapter in place of the current one (or go back to the base model)."""
        from peft import PeftModel

        adapter_path = None if adapter_path is None else str(adapter_path)
        if adapter_path == self.adapter_path:
            return
        if isinstance(self.model, PeftModel):
            self.model = self.model.unload()  # the base model without any adapter
        if adapter_path is not None:
            self.model = PeftModel.from_pretrained(self.model, adapter_path).eval()
        self.adapter_path = adapter_path
        self.kept_mask = kept_mask(load_vocabulary(adapter_path), self.model.config.vocab_size, self.device)

    def generate(self, prompts: Sequence[str], config: GenerationConfig, adapter_path: str | None = None,
                 max_new_tokens: Sequence[int] | None = None) -> list[Generation]:
        """One generation per prompt, in order; `max_new_tokens` optionally limits each prompt."""
        return self._by_length(prompts, config, adapter_path, max_new_tokens,
                               lambda batch, limits: self._generate_batch(batch, config, limits))

    def search(self, prompts: Sequence[str], config: GenerationConfig, search: SearchConfig,
               adapter_path: str | None = None, max_new_tokens: Sequence[int] | None = None) -> list[list[Generation]]:
        """Per prompt, the answers of a depth-first search (inference.dfs) in the order found, `prompts_per_call`
        prompts searching side by side on one KV cache."""
        hold, eos = self.holds.get(config.shape_hold_encoder), self.tokenizer.eos_token_id

        def search_prompts(batch: list[str], limits: list[int]) -> list[list[Generation]]:
            inputs = self.tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            found = search_batch(self.model, inputs["input_ids"], inputs["attention_mask"], limits, search, eos, hold,
                                 self.kept_mask)
            return [[as_generation(answer, self.tokenizer) for answer in answers] for answers in found]

        return self._by_length(prompts, config, adapter_path, max_new_tokens, search_prompts)

    def _by_length(self, prompts: Sequence[str], config: GenerationConfig, adapter_path: str | None,
                   max_new_tokens: Sequence[int] | None, run: Callable[[list[str], list[int]], list[Any]]) -> list[Any]:
        """`run` over batches of prompts of similar length, its results back in the prompts' order."""
        self._use_adapter(adapter_path)
        limits = answer_limits(len(prompts), config, max_new_tokens)
        lengths = [len(ids) for ids in self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
        order = sorted(range(len(prompts)), key=lambda i: lengths[i])  # similar lengths share a batch
        results: dict[int, Any] = {}
        for start in range(0, len(order), self.prompts_per_call):
            batch = order[start:start + self.prompts_per_call]
            results.update(zip(batch, run([prompts[i] for i in batch], [limits[i] for i in batch]), strict=True))
        return [results[i] for i in range(len(prompts))]

    @torch.no_grad()
    def score(self, prompts: Sequence[str], answers: Sequence[str], adapter_path: str | None = None) -> list[float]:
        """Sum of log-probabilities of each answer after its prompt. Each distinct prompt runs once;
        its answers then run together on copies of its KV cache."""
        self._use_adapter(adapter_path)
        answer_ids = self.tokenizer(list(answers), add_special_tokens=False)["input_ids"]
        by_prompt: dict[str, list[int]] = {}
        for index, prompt in enumerate(prompts):
            by_prompt.setdefault(prompt, []).append(index)
        results: dict[int, float] = {}
        for prompt, indices in by_prompt.items():
            for start in range(0, len(indices), self.prompts_per_call):
                chunk = indices[start:start + self.prompts_per_call]
                results.update(zip(chunk, self._score_answers(prompt, [answer_ids[i] for i in chunk]), strict=True))
        return [results[i] for i in range(len(prompts))]

    def _score_answers(self, prompt: str, answers: list[list[int]]) -> list[float]:
        """Log-probabilities of several answers to one prompt: the prompt's cache is reused."""
        from transformers import DynamicCache

        prompt_ids = self.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(self.device)
        cache = DynamicCache()
        first = self.model(input_ids=prompt_ids, past_key_values=cache, use_cache=True, logits_to_keep=1).logits
        cache.batch_repeat_interleave(len(answers))
        length, n_prompt = max(len(ids) for ids in answers), prompt_ids.shape[1]
        ids = torch.full((len(answers), length), self.tokenizer.pad_token_id, dtype=torch.long, device=self.device)
        mask = torch.zeros((len(answers), length), dtype=torch.long, device=self.device)
        for row, answer in enumerate(answers):
            ids[row, :len(answer)] = torch.tensor(answer, device=self.device)
            mask[row, :len(answer)] = 1
        attention_mask = torch.cat([mask.new_ones(len(answers), n_prompt), mask], dim=1)
        positions = torch.arange(n_prompt, n_prompt + length, device=self.device).expand(len(answers), -1)
        logits = self.model(input_ids=ids, attention_mask=attention_mask, position_ids=positions,
                            past_key_values=cache, use_cache=True).logits  # (answers, length, vocab)
        # the prompt's last position predicts each answer's first token; answer position j predicts j + 1
        logits = torch.cat([first.expand(len(answers), -1, -1), logits[:, :-1]], dim=1)
        token_logprobs = torch.log_softmax(logits.float(), dim=-1).gather(-1, ids[..., None])[..., 0]
        return (token_logprobs * mask).sum(dim=-1).tolist()

    @torch.no_grad()
    def _generate_batch(self, prompts: list[str], config: GenerationConfig, limits: list[int]) -> list[Generation]:
        from transformers import StoppingCriteriaList

        inputs = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        sampling, hold = config.temperature > 0, self.holds.get(config.shape_hold_encoder)
        if not sampling:
            return self._greedy_batch(inputs["input_ids"], inputs["attention_mask"], limits, hold)
        from transformers import LogitsProcessorList

        torch.manual_seed(config.seed)
        prompt_length = inputs["input_ids"].shape[1]
        processors = LogitsProcessorList([*([_KeptTokens(self.kept_mask)] if self.kept_mask is not None else []),
                                          *([_HeldShape(prompt_length, hold)] if hold else [])])
        output = self.model.generate(
            **inputs, max_new_tokens=max(limits), do_sample=sampling,
            temperature=config.temperature if sampling else None, top_p=config.top_p if sampling else None,
            top_k=None, pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id,
            stopping_criteria=StoppingCriteriaList([_RowLimits(prompt_length, limits, self.device)]),
            logits_processor=processors,
            return_dict_in_generate=True, output_scores=True)
        new_tokens = output.sequences[:, prompt_length:]  # (batch, new)
        logprobs = self.model.compute_transition_scores(output.sequences, output.scores, normalize_logits=True)
        return [self._to_generation(new_tokens[row], logprobs[row], limits[row]) for row in range(len(prompts))]

    @torch.no_grad()
    def _greedy_batch(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, limits: list[int],
                      hold: ShapeHold | None = None) -> list[Generation]:
        """Greedy decoding with a KV cache that drops each row as soon as it ends, so short answers
        free the batch instead of being padded until the longest one ends. With a `hold`, each
        choice is the best of the tokens it allows, elsewhere the best of the adapter's kept tokens
        (a reduced vocabulary); log-probabilities stay the model's own."""
        from transformers import DynamicCache

        eos = self.tokenizer.eos_token_id
        cache = DynamicCache()
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # left padding: count real tokens only
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                            past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
        rows = torch.arange(len(limits), device=self.device)  # which prompt each live row belongs to
        limit_of_row = torch.tensor(limits, device=self.device)
        next_position = positions[:, -1] + 1
        tokens: list[list[int]] = [[] for _ in limits]
        logprobs: list[list[float]] = [[] for _ in limits]
        n_new = 0
        while True:
            step_logprobs = torch.log_softmax(logits.float(), dim=-1)
            chosen = (step_logprobs if self.kept_mask is None else step_logprobs + self.kept_mask).argmax(dim=-1)
            for index, row in enumerate(rows.tolist() if hold else []):
                allowed = hold.allowed(tokens[row])
                if allowed is not None:
                    chosen[index] = allowed[int(step_logprobs[index, list(allowed)].argmax())]
            chosen_logprob = step_logprobs.gather(1, chosen[:, None])[:, 0]
            for row, token, logprob in zip(rows.tolist(), chosen.tolist(), chosen_logprob.tolist(), strict=True):
                tokens[row].append(token)
                logprobs[row].append(logprob)
            n_new += 1
            finished = (chosen == eos) | (limit_of_row[rows] <= n_new)
            if bool(finished.all()):
                break
            if bool(finished.any()):
                keep = (~finished).nonzero()[:, 0]
                cache.batch_select_indices(keep)
                rows, chosen = rows[keep], chosen[keep]
                attention_mask, next_position = attention_mask[keep], next_position[keep]
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(rows), 1)], dim=1)
            logits = self.model(input_ids=chosen[:, None], attention_mask=attention_mask, use_cache=True,
                                position_ids=next_position[:, None], past_key_values=cache).logits[:, -1]
            next_position = next_position + 1
        return [self._to_generation(torch.tensor(ids), torch.tensor(lps), limit)
                for ids, lps, limit in zip(tokens, logprobs, limits, strict=True)]

    def _to_generation(self, tokens: torch.Tensor, logprobs: torch.Tensor, limit: int) -> Generation:
        ids = tokens.tolist()[:limit]
        eos = self.tokenizer.eos_token_id
        end = ids.index(eos) + 1 if eos in ids else len(ids)  # keep the end token, drop padding after it
        ids = ids[:end]
        text_ids = ids[:-1] if ids and ids[-1] == eos else ids
        return Generation(text=self.tokenizer.decode(text_ids, skip_special_tokens=True), token_ids=ids,
                          cumulative_logprob=float(logprobs[:end].sum()), n_tokens=len(ids))


def kept_mask(kept: tuple[int, ...] | None, vocab_size: int, device: str) -> torch.Tensor | None:
    """0 on the kept token ids and -inf elsewhere, to add to logits; None for the full vocabulary."""
    if kept is None:
        return None
    mask = torch.full((vocab_size,), float("-inf"), device=device)
    mask[list(kept)] = 0.0
    return mask


class _KeptTokens:
    """A logits processor that leaves only a reduced vocabulary's tokens."""

    def __init__(self, mask: torch.Tensor):
        self.mask = mask

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return scores + self.mask


class _HeldShape:
    """A logits processor that leaves only the tokens a ShapeHold allows, row by row."""

    def __init__(self, prompt_length: int, hold: ShapeHold):
        self.prompt_length, self.hold = prompt_length, hold

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        for row, ids in enumerate(input_ids[:, self.prompt_length:].tolist()):
            allowed = self.hold.allowed(ids)
            if allowed is not None:
                kept = scores[row, list(allowed)]
                scores[row] = float("-inf")
                scores[row, list(allowed)] = kept
        return scores


class _RowLimits:
    """A stopping criterion that ends each row of a batch at its own number of new tokens."""

    def __init__(self, prompt_length: int, limits: list[int], device: str):
        self.prompt_length = prompt_length
        self.limits = torch.tensor(limits, device=device)

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        return (input_ids.shape[1] - self.prompt_length) >= self.limits  # (batch,) bool
