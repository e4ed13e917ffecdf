"""One loader for every model of the course, LoRA, and the helpers the stages share.

- ``load_model(path_or_id, ...)``: policy, reference and reward models from a local
  directory or a hub id, optionally 4-bit NF4 (bitsandbytes) and with LoRA (peft).
  The gpu profile calls exactly the same function.
- ``generate``: sampling responses from a model (its chat prompt: ``rlhf_lab.chat.prompt_text``).

The tokenizer and the tiny base model are built in ``rlhf_lab.stages.pretrain``; the
artifact cache is ``rlhf_lab.cache``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from dataclasses import dataclass

import torch

from .config import RESPONSE_TOKENS, Profile
from .sampling import sample, texts


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
    """bf16 where the GPU supports it (Ampere and later), fp16 on older GPUs (a free Colab T4),
    fp32 on CPU."""
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


# ---------------------------------------------------------------------------
# Clear errors for the gpu path: what went wrong, why, what to do next
# ---------------------------------------------------------------------------


class ModelLoadError(RuntimeError):
    """A model could not be loaded (no GPU, bitsandbytes without GPU support, hub unreachable)."""


class GPUOutOfMemoryError(RuntimeError):
    """Raised from torch.cuda.OutOfMemoryError with what to lower, in order."""


def no_cuda_error() -> ModelLoadError:
    return ModelLoadError(
        "device='cuda' was asked for but torch sees no GPU (torch.cuda.is_available() is False). Either this "
        "machine has no NVIDIA GPU, or torch is a CPU build (check `python -c \"import torch; print(torch.version.cuda)\"`). "
        "Use the tiny profile (RLHF_LAB_PROFILE=tiny, CPU), install a CUDA build of torch, or run "
        "`rlhf-lab doctor --profile gpu`.")


def bitsandbytes_gpu_problem() -> str | None:
    """Why bitsandbytes cannot run 4-bit layers on this GPU, or None if it can (or there is no GPU)."""
    if not torch.cuda.is_available():
        return None
    try:
        import bitsandbytes  # noqa: F401
        from bitsandbytes import cextension
    except Exception as error:  # a broken native library raises various errors at import
        return f"bitsandbytes cannot be imported ({type(error).__name__}: {error})"
    if not isinstance(cextension.lib, cextension.CudaBNBNativeLibrary):
        return (f"bitsandbytes {getattr(bitsandbytes, '__version__', '?')} has no GPU library for this machine "
                f"(torch CUDA {torch.version.cuda}; backend {cextension.BNB_BACKEND})")
    return None


def check_bitsandbytes_gpu() -> None:
    problem = bitsandbytes_gpu_problem()
    if problem:
        raise ModelLoadError(
            f"4-bit loading needs bitsandbytes with GPU support, but {problem}. Reinstall it for your CUDA "
            "version (`pip install -U bitsandbytes`), or load without 4-bit (quantize_4bit=False: about 4x "
            "more memory for the weights).")


def hub_unreachable_error(model_id, error: Exception | None = None) -> ModelLoadError:
    """The error for a hub id that is neither in the local Hugging Face cache nor reachable."""
    import os

    offline = os.environ.get("HF_HUB_OFFLINE", "0") == "1" or os.environ.get("TRANSFORMERS_OFFLINE", "0") == "1"
    why = ("the Hugging Face Hub is switched off (HF_HUB_OFFLINE=1) and the model is not in the local cache"
           if offline else "the Hugging Face Hub could not be reached, or has no such model")
    detail = f" ({type(error).__name__}: {str(error).splitlines()[0][:160]})" if error else ""
    return ModelLoadError(
        f"Cannot load {str(model_id)!r}: {why}{detail}. Download it once where there is internet "
        f"(`huggingface-cli download {model_id}`; it is then found offline), or pass a local directory "
        "holding config.json and *.safetensors (set RLHF_LAB_BASE_MODEL=<directory>).")


OUT_OF_MEMORY_ADVICE = (
    "the per-device batch size (raise gradient_accumulation_steps to keep the effective batch)",
    "the sequence length (max_length; for PPO also max_new_tokens)",
    "PPO's rollout batch_size and mini_batch_size",
    "the LoRA rank (lora_r)",
    "the model: the gpu profile (0.5B) instead of gpu-1.5b, or a smaller RLHF_LAB_BASE_MODEL",
)


def out_of_memory_advice(what: str = "This step") -> str:
    lines = "; ".join(f"{i}. {item}" for i, item in enumerate(OUT_OF_MEMORY_ADVICE, 1))
    return (f"{what} ran out of GPU memory. Lower, in this order: {lines}. Keep gradient checkpointing and "
            "4-bit on. `rlhf-lab memory --profile <name> --batch-size N --max-length L` estimates the peak "
            "before you try.")


@contextlib.contextmanager
def explain_out_of_memory(what: str = "This step"):
    """Turn torch's out-of-memory error into one that says what to lower, in order."""
    try:
        yield
    except torch.cuda.OutOfMemoryError as error:
        raise GPUOutOfMemoryError(out_of_memory_advice(what)) from error


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
        raise no_cuda_error()
    if quantize_4bit and device == "cuda":
        check_bitsandbytes_gpu()
    dtype = compute_dtype(device)
    # safetensors only (no pickle), and never code shipped with a model repository
    kwargs = {"dtype": dtype, "use_safetensors": True, "trust_remote_code": False}
    if quantize_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype)
        # Under `accelerate launch` each process holds its own copy, on its own GPU (LOCAL_RANK).
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", 0))} if device == "cuda" else "cpu"
    from pathlib import Path

    try:
        if kind == "reward":
            model = AutoModelForSequenceClassification.from_pretrained(path_or_id, num_labels=1, **kwargs)
            if tokenizer is not None:
                model.config.pad_token_id = tokenizer.pad_token_id
        else:
            model = AutoModelForCausalLM.from_pretrained(path_or_id, **kwargs)
    except OSError as error:
        if Path(str(path_or_id)).expanduser().exists():
            raise ModelLoadError(f"{path_or_id}: cannot load a model from this directory ({error}). The course "
                                 "loads safetensors only: it needs config.json and *.safetensors.") from error
        raise hub_unreachable_error(path_or_id, error) from error
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


# ---------------------------------------------------------------------------
# Prompts and sampling
# ---------------------------------------------------------------------------


def generate(model, tokenizer, user_texts: list[str], max_new_tokens: int = RESPONSE_TOKENS, do_sample: bool = True,
             temperature: float = 1.0, seed: int = 0, batch_size: int = 64, chat: bool = True) -> list[str]:
    """Responses to ``user_texts`` (chat-formatted unless ``chat=False``), decoded and stripped:
    pure sampling at ``temperature``, or greedy with ``do_sample=False`` (see rlhf_lab.sampling)."""
    return texts(sample(model, tokenizer, user_texts, max_new_tokens, temperature, greedy=not do_sample,
                        seed=seed, batch_size=batch_size, chat=chat))
