"""Inference: one backend interface (Hugging Face or vLLM) and the augment-infer-revert loop (I1, I2)."""

import json
from typing import Any

from arc24_lib.inference.backend import BACKENDS, Backend, Generation, GenerationConfig

__all__ = ["Backend", "BackendPool", "Generation", "GenerationConfig", "make_backend"]


def make_backend(name: str, model_path: str = "embedded", **options: Any) -> Backend:
    """Build a backend by name; vLLM is imported only when chosen."""
    if name == "hf":
        from arc24_lib.inference.hf import HFBackend

        return HFBackend(model_path, **options)
    if name == "vllm":
        from arc24_lib.inference.vllm import VLLMBackend

        return VLLMBackend(model_path, **options)
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


class BackendPool:
    """Each backend built once per distinct `InferenceConfig.backend_options`: configs that differ only
    in how they predict (the arms of a bench) share one model, and one vLLM engine."""

    def __init__(self) -> None:
        self._built: dict[str, Backend] = {}

    def __len__(self) -> int:
        return len(self._built)

    def get(self, config: Any, model_path: str) -> Backend:
        """The backend for `config` (an `InferenceConfig`) on `model_path`, built on first use."""
        key = json.dumps(config.backend_options(model_path), sort_keys=True)
        if key not in self._built:
            self._built[key] = config.build_backend(model_path)
        return self._built[key]
