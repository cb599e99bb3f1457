"""Inference: one backend interface (Hugging Face or vLLM) and the augment-infer-revert loop (I1, I2)."""

from typing import Any

from arc24_lib.inference.backend import BACKENDS, Backend, Generation, GenerationConfig

__all__ = ["Backend", "Generation", "GenerationConfig", "make_backend"]


def make_backend(name: str, model_path: str = "embedded", **options: Any) -> Backend:
    """Build a backend by name; vLLM is imported only when chosen."""
    if name == "hf":
        from arc24_lib.inference.hf import HFBackend

        return HFBackend(model_path, **options)
    if name == "vllm":
        from arc24_lib.inference.vllm import VLLMBackend

        return VLLMBackend(model_path, **options)
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
