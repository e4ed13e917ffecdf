"""A real architecture at toy size (Qwen2 by default), randomly initialised, with a locally
trained tokenizer: the gpu profile's code path (4-bit + LoRA, the shared base) runs on it on a
CPU, offline, in seconds. Tests, notebook 08 and the GPU memory benchmark use it."""

from __future__ import annotations

from pathlib import Path

from .memory import ARCHITECTURES, Architecture
from .stages.pretrain import train_tokenizer


def random_model(arch: Architecture, seed: int = 0, **config_overrides):
    """A randomly initialised causal LM of ``arch`` (no download: for benchmarks and tests)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(arch.to_config(**config_overrides))


def save_tiny_real_architecture(out_dir, key: str = "qwen2.5-0.5b", seed: int = 0, texts=None, **sizes):
    """A tiny random-init model of a real architecture (Qwen2 by default, sizes multiples of 64)
    with a locally trained tokenizer and the course's chat template, saved as safetensors.

    The gpu profile's code path (4-bit + LoRA, the shared base) runs on it on a CPU, offline.
    """
    texts = texts or [f"The answer to question {i} is {i * 7 % 13}. Please be polite and concise." for i in range(200)]
    tokenizer = train_tokenizer(texts, 320)
    arch = ARCHITECTURES[key].tiny(vocab_size=max(384, len(tokenizer)), **sizes)
    model = random_model(arch, seed, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=None)
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir
