"""One loader for every model of the course, LoRA, and the helpers the stages share.

- ``load_model(path_or_id, ...)``: policy, reference and reward models from a local
  directory or a hub id, optionally 4-bit NF4 (bitsandbytes) and with LoRA (peft).
  The gpu profile calls exactly the same function.
- ``prompt_text`` / ``generate``: the chat prompt, and sampling responses from a model.

The tokenizer and the tiny base model are built in ``rlhf_lab.stages.pretrain``; the
artifact cache is ``rlhf_lab.cache``.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import torch

from .config import Profile


def quiet_libraries() -> None:
    """Keep notebook output to the lesson: no weight-loading bars, no library chatter.

    (bitsandbytes warns on every CPU run that an optional kernel package is missing; the
    reward model's freshly created score head is reported MISSING, which is expected.)
    """
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


@dataclass(frozen=True)
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: str | tuple = "all-linear"

    @classmethod
    def from_profile(cls, profile: Profile) -> "LoraSettings":
        return cls(profile.lora_r, profile.lora_alpha, profile.lora_dropout)


# ---------------------------------------------------------------------------
# One loader for policy, reference and reward models
# ---------------------------------------------------------------------------


def compute_dtype(device: str) -> torch.dtype:
    """bf16 where the GPU supports it, fp16 on older GPUs, fp32 on CPU."""
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def disable_cpu_inference_repacking(model) -> int:
    """Guard the bitsandbytes CPU trap (see STACK_NOTES.md).

    On CPUs with AVX512-BF16, an eval-mode forward repacks 4-bit weights for an inference
    kernel that has no backward, and later LoRA gradients come out wrong. Turning the
    kernel off keeps gradients correct; generation still works. Returns layers changed.
    """
    try:
        import bitsandbytes as bnb
    except ImportError:
        return 0
    changed = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit) and hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
            changed += 1
    return changed


def load_model(path_or_id, *, kind: str = "causal_lm", quantize_4bit: bool = False,
               lora: LoraSettings | None = None, device: str = "cpu", trainable: bool = True,
               tokenizer=None):
    """Load a model from a local directory or a hub id.

    kind: "causal_lm" (policy / reference) or "reward" (a sequence classifier with one
    output: the reward model). quantize_4bit: NF4 weights with double quantization,
    computing in bf16/fp16 on GPU. lora: wrap in a peft LoRA adapter (for a reward model
    the score head is trained and saved in full: modules_to_save).
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    quiet_libraries()
    if kind not in ("causal_lm", "reward"):
        raise ValueError(f"kind={kind!r} is not a model kind; use 'causal_lm' or 'reward'.")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was asked for but torch sees no GPU. Use the tiny profile "
                           "(device 'cpu') or check `rlhf-lab doctor`.")
    dtype = compute_dtype(device)
    kwargs = {"dtype": dtype}
    if quantize_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype)
        kwargs["device_map"] = {"": 0} if device == "cuda" else "cpu"
    if kind == "reward":
        model = AutoModelForSequenceClassification.from_pretrained(path_or_id, num_labels=1, **kwargs)
        if tokenizer is not None:
            model.config.pad_token_id = tokenizer.pad_token_id
    else:
        model = AutoModelForCausalLM.from_pretrained(path_or_id, **kwargs)
    if quantize_4bit:
        disable_cpu_inference_repacking(model)
    elif device == "cuda":
        model.to(device)
    if lora is not None:
        model = add_lora(model, lora, kind, quantized=quantize_4bit, trainable=trainable)
    if not trainable:
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
    return model


def add_lora(model, lora: LoraSettings, kind: str = "causal_lm", quantized: bool = False, trainable: bool = True):
    from peft import LoraConfig, TaskType, get_peft_model, prepare_model_for_kbit_training

    if quantized and trainable:
        # fp32 norms and input-gradients for the frozen 4-bit base; no checkpointing for tiny models.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    config = LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules) if isinstance(lora.target_modules, tuple) else lora.target_modules,
        task_type=TaskType.SEQ_CLS if kind == "reward" else TaskType.CAUSAL_LM,
        modules_to_save=["score"] if kind == "reward" else None,
    )
    return get_peft_model(model, config)


def model_device(model) -> torch.device:
    return next(model.parameters()).device


# ---------------------------------------------------------------------------
# Prompts and sampling
# ---------------------------------------------------------------------------


def prompt_text(tokenizer, user_text: str) -> str:
    """The chat-formatted prompt, ending where the assistant starts to speak."""
    return tokenizer.apply_chat_template([{"role": "user", "content": user_text}], tokenize=False,
                                         add_generation_prompt=True)


@torch.no_grad()
def generate(model, tokenizer, user_texts: list[str], max_new_tokens: int = 24, do_sample: bool = True,
             temperature: float = 1.0, seed: int = 0, batch_size: int = 64, chat: bool = True) -> list[str]:
    """Responses to ``user_texts`` (chat-formatted unless ``chat=False``), decoded and stripped."""
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    device = model_device(model)
    responses = []
    for i in range(0, len(user_texts), batch_size):
        chunk = user_texts[i:i + batch_size]
        texts = [prompt_text(tokenizer, t) for t in chunk] if chat else chunk
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=do_sample,
                             temperature=temperature if do_sample else None, top_k=0 if do_sample else None,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        new_tokens = out[:, enc["input_ids"].shape[1]:]
        responses += [r.strip() for r in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
    model.train(was_training)
    return responses
