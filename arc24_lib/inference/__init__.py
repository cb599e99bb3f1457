"""Inference: one backend interface (Hugging Face or vLLM) and the augment-infer-revert loop (I1, I2)."""

from arc24_lib.inference.backend import Backend, Generation, GenerationConfig, make_backend

__all__ = ["Backend", "Generation", "GenerationConfig", "make_backend"]
