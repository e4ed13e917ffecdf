"""What the stages share: how a missing artifact is built (``Builder``), TRL arguments for the
profile, merging a LoRA adapter, and loading a saved adapter policy (DPO, PPO)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

from .. import models
from ..cache import built_from
from ..config import Profile
from .pretrain import get_tokenizer

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def trainer_arguments(profile, output_dir: Path, **overrides) -> dict:
    """Arguments every TRL trainer of the course gets (no loggers, quiet), for the profile.

    A real model (gpu profiles) trains with activation (gradient) checkpointing; on a GPU in
    bf16 where the card supports it (Ampere and later), else fp16 with loss scaling (a T4);
    with a 4-bit base on a GPU, bitsandbytes' paged 8-bit AdamW (optimizer states in 8 bits,
    paged to CPU memory under pressure). The tiny profile: fp32 on CPU, no checkpointing
    (bf16 autocast if its base is 4-bit).
    """
    real_model = profile.real_model
    cuda = profile.device == "cuda" and torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    # TRL (1.16) turns a 4-bit model's trainable weights (LoRA, a reward model's score head)
    # into bf16; on a CPU, bf16 autocast keeps every matmul in one dtype (and is faster there).
    cpu_4bit = profile.device == "cpu" and profile.quantize_4bit
    args = {
        "output_dir": str(output_dir),
        "report_to": "none",
        "use_cpu": profile.device == "cpu",
        "save_strategy": "no",
        "logging_steps": 5,
        "seed": profile.seed,
        "data_seed": profile.seed,
        "disable_tqdm": False,
        "logging_first_step": True,
        # Checkpointing keeps only each layer's input for the backward pass and recomputes the
        # rest: it saves most activation memory on a real model and only costs time on tiny ones.
        "gradient_checkpointing": real_model,
        "dataloader_num_workers": 0,
        "bf16": bf16 or cpu_4bit,
        "fp16": cuda and not bf16,
    }
    if real_model:
        # Non-reentrant checkpointing works with a frozen 4-bit base without forcing input gradients.
        args["gradient_checkpointing_kwargs"] = dict(use_reentrant=False)  # a value, not a TRL keyword
    if cuda and profile.quantize_4bit:
        args["optim"] = "paged_adamw_8bit"
    args.update(overrides)
    return args


def schedule_arguments(settings) -> dict:
    """The training schedule every TRL stage takes from its settings dataclass (written once)."""
    return {
        "num_train_epochs": settings.epochs,
        "per_device_train_batch_size": settings.batch_size,
        "learning_rate": settings.learning_rate,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 2,
        "max_length": settings.max_length,
    }


def quiet_when_no_progress(trainer, progress: bool):
    """Keep the Trainer's output to one progress bar (or nothing): by default it also prints
    every logged dict, which buries the lesson. The logs are still in trainer.state."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.utils.notebook import NotebookProgressCallback

    class BarOnlyCallback(ProgressCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            super().on_train_begin(args, state, control, **kwargs)
            if self.training_bar is not None:
                # At most one redraw a second: a notebook bar sends a message per redraw, and a
                # long run's thousands of them overflow the kernel's output queue (nbval then
                # waits for output that was dropped).
                self.training_bar.mininterval = 1.0

        def on_log(self, args, state, control, logs=None, **kwargs):
            pass

    # In a notebook the Trainer's default bar is an HTML table (NotebookProgressCallback) that
    # redraws five times a second: removed too, or a notebook shows two bars and floods its kernel.
    for callback in (PrinterCallback, ProgressCallback, NotebookProgressCallback):
        trainer.remove_callback(callback)
    if progress:
        trainer.add_callback(BarOnlyCallback())
    return trainer


def run_trainer(trainer, progress: bool) -> float:
    """Train with one progress bar or none (:func:`quiet_when_no_progress`); the seconds it took."""
    quiet_when_no_progress(trainer, progress)
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start


def final_loss(history: list[dict]) -> float:
    return history[-1]["loss"] if history else float("nan")


_SCRATCH: tempfile.TemporaryDirectory | None = None  # this process's scratch space, deleted when it exits


def scratch_dir(out_dir: Path | None, stage: str) -> Path:
    """Where a trainer writes its working files: inside ``out_dir``, or a fresh folder in this
    process's scratch space (so the many unsaved models of notebook 03 leave nothing in /tmp)."""
    global _SCRATCH
    if out_dir is not None:
        return Path(out_dir)
    if _SCRATCH is None:
        _SCRATCH = tempfile.TemporaryDirectory(prefix="rlhf_lab_scratch_")
    return Path(tempfile.mkdtemp(prefix=f"{stage}_", dir=_SCRATCH.name))


def loss_history(trainer) -> list[dict]:
    """The trainer's logged training metrics, one dict per logging step."""
    return [entry for entry in trainer.state.log_history if "loss" in entry]


def merge_lora_into_base(peft_model, base_path, out_dir: Path, tokenizer, profile) -> None:
    """Save base + adapter as one plain model, the starting point of the next stage.

    With a 4-bit base the adapter is merged into a full-precision copy of the base
    (merging into 4-bit weights would round the update away).
    """
    if profile.quantize_4bit:
        adapter_dir = Path(out_dir) / "_adapter"
        peft_model.save_pretrained(adapter_dir)
        from peft import PeftModel

        base = models.load_model(base_path, device=profile.device, trainable=False)
        merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    else:
        merged = peft_model.merge_and_unload()
    merged.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def load_adapter_policy(profile: Profile, adapter_dir: Path):
    """SFT model + a saved LoRA adapter (DPO or PPO): the policy, whose adapter-off self is
    the reference. Returns (model, tokenizer)."""
    from peft import PeftModel

    base = models.load_model(built_from(adapter_dir), quantize_4bit=profile.quantize_4bit,
                             device=profile.device)
    model = PeftModel.from_pretrained(base, str(Path(adapter_dir) / "adapter"))
    model.eval()
    return model, get_tokenizer(profile)
