"""Peak GPU memory and seconds per step of every stage, 4-bit + LoRA against a bf16 full fine-tune.

    python benchmarks/bench_gpu_memory.py                       # on a CUDA machine
    python benchmarks/bench_gpu_memory.py --models qwen2.5-0.5b --stages sft,ppo --steps 3
    python benchmarks/bench_gpu_memory.py --dry-run             # CPU smoke run on a tiny config

Each real architecture (rlhf_lab.memory.ARCHITECTURES: configs written locally, since the
GPU machines have no internet) is built with random weights, saved as safetensors, and
loaded through the course's own loader (rlhf_lab.models.load_model: NF4 + double
quantization, LoRA on all linear layers). Per stage it runs a warm-up step and ``--steps``
timed steps of the same computation the course's trainers do, and records
``torch.cuda.max_memory_allocated`` (PyTorch's allocations; the CUDA context, ~0.5 GB,
comes on top) beside the estimate of ``rlhf-lab memory``:

- sft: causal-LM loss on ``batch x length`` tokens, backward, optimizer step;
- reward: the sequence classifier on chosen + rejected (2 x batch), Bradley-Terry loss;
- dpo: the policy on chosen + rejected with gradients, the reference (adapters off, or a
  second bf16 model for the full fine-tune) without, DPO loss;
- ppo: one step of rlhf_lab.ppo.PPOTrainer (rollout of ``--ppo-batch`` prompts with
  ``--response-length`` new tokens, then the update) with every role on one shared 4-bit
  base (rlhf_lab.shared_base), and the policy alone (a constant reward) for the 1.3x target.
  The full fine-tune PPO holds a bf16 policy, a reference copy and a separate reward model.

QLoRA steps use bitsandbytes' paged 8-bit AdamW, the full fine-tune torch AdamW (fp32
states); both use gradient checkpointing and bf16 autocast (fp16 + loss scaling on cards
without bf16, such as a T4). An out-of-memory step is recorded as "OOM", not a crash.
Results: benchmarks/results/gpu_memory.json (dry run: gpu_memory_dry_run.json).

Target: every stage of the gpu profile fits an 8 GB card with 4-bit + LoRA, and PPO with every
role on one shared base needs at most 1.3x the memory of the policy alone.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

STAGES = ("sft", "reward", "dpo", "ppo")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="qwen2.5-0.5b,qwen2.5-1.5b,qwen2.5-7b",
                        help="comma-separated keys of rlhf_lab.memory.ARCHITECTURES")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--steps", type=int, default=3, help="timed steps per stage (after one warm-up)")
    parser.add_argument("--batch-size", type=int, default=4, help="sequences (SFT) or pairs (reward, DPO: half)")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--ppo-batch", type=int, default=32)
    parser.add_argument("--ppo-mini-batch", type=int, default=8)
    parser.add_argument("--response-length", type=int, default=64)
    parser.add_argument("--no-full", action="store_true", help="skip the bf16 full fine-tune comparison")
    parser.add_argument("--dry-run", action="store_true",
                        help="CPU smoke run: tiny versions of the architectures, small batch, one step")
    parser.add_argument("--out", default=None, help="result file (default benchmarks/results/gpu_memory.json)")
    return parser.parse_args(argv)


class Runner:
    def __init__(self, args, arch, work_dir: Path, device: str):
        import torch

        from rlhf_lab import models

        self.args, self.arch, self.work_dir, self.device = args, arch, work_dir, device
        self.cuda = device == "cuda"
        self.dtype = models.compute_dtype(device) if self.cuda else torch.float32
        self.scaler = torch.amp.GradScaler("cuda") if self.cuda and self.dtype == torch.float16 else None
        self.base_dir = work_dir / "base"
        self.tokenizer = None

    # -- building ---------------------------------------------------------------------

    def build(self):
        """Random weights of the architecture, saved as safetensors with a small tokenizer."""
        import torch

        from rlhf_lab import tiny_real
        from rlhf_lab.stages.pretrain import train_tokenizer

        texts = [f"Question {i}: what is {i} plus {i % 7}? The answer is {i + i % 7}." for i in range(400)]
        self.tokenizer = train_tokenizer(texts, 512)
        model = tiny_real.random_model(self.arch, pad_token_id=self.tokenizer.pad_token_id,
                                       eos_token_id=self.tokenizer.eos_token_id, bos_token_id=None,
                                       dtype=torch.bfloat16 if self.cuda else torch.float32)
        model.save_pretrained(self.base_dir, safe_serialization=True)
        self.tokenizer.save_pretrained(self.base_dir)
        del model
        gc.collect()

    def load(self, kind="causal_lm", full=False, trainable=True):
        from rlhf_lab import models

        lora = None if full or not trainable else models.LoraSettings(16, 32, 0.05)
        model = models.load_model(self.base_dir, kind=kind, quantize_4bit=not full, device=self.device,
                                  lora=lora, trainable=trainable, tokenizer=self.tokenizer)
        if trainable:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.config.use_cache = False
            model.train()
        return model

    def optimizer(self, model, full):
        import torch

        params = [p for p in model.parameters() if p.requires_grad]
        if not full and self.cuda:
            import bitsandbytes as bnb

            return bnb.optim.PagedAdamW8bit(params, lr=1e-5)
        return torch.optim.AdamW(params, lr=1e-5)

    def autocast(self):
        import torch

        return torch.autocast("cuda" if self.cuda else "cpu", dtype=self.dtype, enabled=self.cuda)

    def backward_step(self, loss, optimizer):
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            loss.backward()
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def ids(self, rows, length):
        import torch

        return torch.randint(10, len(self.tokenizer), (rows, length), device=self.device)

    # -- one stage ----------------------------------------------------------------------

    def stage_step(self, stage: str, full: bool):
        """Set up the stage's models and return a function that runs one step."""
        import torch

        from rlhf_lab import losses

        a = self.args
        if stage == "sft":
            model = self.load(full=full)
            opt = self.optimizer(model, full)

            def step():
                ids = self.ids(a.batch_size, a.max_length)
                with self.autocast():
                    loss = model(input_ids=ids, labels=ids).loss
                self.backward_step(loss, opt)
            return step, [model, opt]
        if stage == "reward":
            model = self.load(kind="reward", full=full)
            opt = self.optimizer(model, full)

            def step():
                ids = self.ids(2 * a.batch_size, a.max_length)
                with self.autocast():
                    chosen, rejected = model(input_ids=ids).logits.squeeze(-1).float().chunk(2)
                    loss = losses.bradley_terry_loss(chosen, rejected)
                self.backward_step(loss, opt)
            return step, [model, opt]
        if stage == "dpo":
            from trl.trainer.utils import selective_log_softmax

            model = self.load(full=full)
            reference = self.load(full=True, trainable=False) if full else None
            opt = self.optimizer(model, full)
            pairs = max(1, a.batch_size // 2)

            def logps(m, ids):
                logits = m(input_ids=ids).logits[:, :-1]
                return selective_log_softmax(logits, ids[:, 1:]).sum(-1)

            def step():
                ids = self.ids(2 * pairs, a.max_length)
                with torch.no_grad(), self.autocast():
                    if reference is not None:
                        ref = logps(reference, ids)
                    else:
                        with model.disable_adapter():
                            ref = logps(model, ids)
                with self.autocast():
                    pol = logps(model, ids)
                    loss, _, _ = losses.dpo_loss(*pol.float().chunk(2), *ref.float().chunk(2))
                self.backward_step(loss, opt)
            return step, [model, reference, opt]
        if stage in ("ppo", "ppo-policy-alone"):
            return self.ppo_step(full, policy_alone=stage == "ppo-policy-alone")
        raise ValueError(stage)

    def ppo_step(self, full: bool, policy_alone: bool):
        import torch

        from rlhf_lab import models
        from rlhf_lab.ppo import PPOSettings, PPOTrainer
        from rlhf_lab.shared_base import load_shared_base
        from rlhf_lab.cache import record_lineage
        from rlhf_lab.scoring import score_responses

        a = self.args
        # prompts of about max_length / 2 tokens (a word and a number are about two tokens)
        words = " ".join(f"question {i}" for i in range(a.max_length // 4))
        prompts = [f"{i}: {words}" for i in range(a.ppo_batch)]
        config = PPOSettings(steps=1, batch_size=a.ppo_batch, samples_per_prompt=1, mini_batch_size=a.ppo_mini_batch,
                           ppo_epochs=1,
                           max_new_tokens=a.response_length, learning_rate=1e-5)
        if full:
            policy = self.load(full=True)
            reference = self.load(full=True, trainable=False)
            reward = self.load(kind="reward", full=True, trainable=False)

            def reward_fn(p, r):
                return score_responses(reward, self.tokenizer, p, r).to(self.device)
            trainer = PPOTrainer(policy, self.tokenizer, reward_fn, config, ref_model=reference)
            keep = [policy, reference, reward, trainer]
        elif policy_alone:
            policy = self.load()
            trainer = PPOTrainer(policy, self.tokenizer, lambda p, r: torch.zeros(len(p), device=self.device), config)
            keep = [policy, trainer]
        else:
            reward_dir = self.work_dir / "reward"
            if not (reward_dir / "adapter").exists():
                reward = self.load(kind="reward")
                reward.save_pretrained(reward_dir / "adapter")
                record_lineage(reward_dir, self.base_dir)
                del reward
                self.free()
            from rlhf_lab.config import get_profile

            profile = get_profile("gpu", device=self.device, base_model=str(self.base_dir))
            shared = load_shared_base(profile, reward_dir, sft_dir=self.base_dir, tokenizer=self.tokenizer,
                                      lora=models.LoraSettings(16, 32, 0.05))
            shared.policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            trainer = PPOTrainer(shared.policy, self.tokenizer, shared.reward_fn, config)
            keep = [shared, trainer]

        def step():
            with self.autocast():
                trainer.step(prompts)
        return step, keep

    def free(self):
        import torch

        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()

    def measure(self, stage: str, full: bool) -> dict:
        import torch

        self.free()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        keep = []
        try:
            step, keep = self.stage_step(stage, full)
            step()  # warm-up (allocator, kernels, optimizer states)
            if self.cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(self.args.steps):
                step()
            if self.cuda:
                torch.cuda.synchronize()
            seconds = (time.perf_counter() - start) / self.args.steps
            peak = torch.cuda.max_memory_allocated() / 1e9 if self.cuda else None
            return {"peak_gb": None if peak is None else round(peak, 3), "seconds_per_step": round(seconds, 3)}
        except torch.cuda.OutOfMemoryError:
            return {"peak_gb": "OOM", "seconds_per_step": None}
        finally:
            del keep
            self.free()


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("bench_gpu_memory: no CUDA GPU is visible to torch, so GPU memory cannot be measured here. "
              "Run it on a machine with an NVIDIA GPU and a CUDA build of torch, or use --dry-run for a CPU "
              "smoke run on tiny configs. `rlhf-lab memory` prints the estimates.", file=sys.stderr)
        return 2
    from _common import machine, save

    from rlhf_lab import memory
    from rlhf_lab.models import quiet_libraries

    quiet_libraries()
    device = "cpu" if args.dry_run else "cuda"
    if args.dry_run:
        args.steps, args.batch_size, args.max_length = 1, 2, 32
        args.ppo_batch, args.ppo_mini_batch, args.response_length = 2, 2, 4
        torch.set_num_threads(min(2, torch.get_num_threads()))
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    for stage in stages:
        if stage not in STAGES:
            print(f"Unknown stage {stage!r}; use {', '.join(STAGES)}.", file=sys.stderr)
            return 2
    workloads = memory.gpu_workloads(args.max_length, args.batch_size, args.ppo_batch, args.ppo_mini_batch,
                                     args.response_length)
    card = torch.cuda.get_device_name(0) if device == "cuda" else "CPU (dry run, tiny configs)"
    result = {"machine": machine(), "card": card, "settings": vars(args), "models": {}}
    for key in keys:
        real = memory.architecture_for(key)
        arch = real.tiny() if args.dry_run else real
        entry = result["models"][key] = {"architecture": arch.name, "parameters": arch.total_params, "stages": {}}
        with tempfile.TemporaryDirectory(prefix="bench-gpu-memory-") as tmp:
            runner = Runner(args, arch, Path(tmp), device)
            start = time.perf_counter()
            runner.build()
            entry["build_seconds"] = round(time.perf_counter() - start, 1)
            for stage in stages:
                est = memory.estimate(arch, workloads[stage], memory.QLORA)
                row = {"qlora": runner.measure(stage, full=False),
                       "estimate_gb": round(est.total / 1e9, 3),
                       "estimate_without_context_gb": round((est.total - memory.CUDA_CONTEXT_BYTES) / 1e9, 3)}
                if stage == "ppo":
                    row["policy_alone"] = runner.measure("ppo-policy-alone", full=False)
                if not args.no_full:
                    row["bf16_full"] = runner.measure(stage, full=True)
                    row["estimate_bf16_full_gb"] = round(memory.estimate(arch, workloads[stage],
                                                                         memory.BF16_FULL).total / 1e9, 3)
                entry["stages"][stage] = row
                print(f"{arch.name:<22} {stage:<7} {json.dumps(row)}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")
    else:
        save("gpu_memory_dry_run" if args.dry_run else "gpu_memory", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
