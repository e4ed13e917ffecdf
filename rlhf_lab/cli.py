"""The ``rlhf-lab`` command: doctor, world, run, train, memory, cache.

``rlhf-lab train STAGE`` also runs under ``accelerate launch`` (one process per GPU)::

    accelerate launch --config_file accelerate/ddp.yaml --num_processes 2 -m rlhf_lab.cli train sft --profile gpu

Heavy libraries are imported inside the commands that need them, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys

from . import cache_tools, memory
from .config import ConfigError, cache_dir, default_seed, get_profile, parse_seed, shown_path
from .world import FAMILIES, World

REQUIRED = ["torch", "transformers", "trl", "peft", "bitsandbytes", "datasets", "accelerate", "tokenizers",
            "ipywidgets", "jupyterlab", "matplotlib", "tqdm", "filelock"]


def cmd_doctor(args) -> int:
    """Print versions, device, bitsandbytes status, profile and cache; non-zero if broken."""
    from importlib.metadata import PackageNotFoundError, version


    problems = []
    print(f"python        {platform.python_version()} ({shown_path(sys.executable)})")
    for name in REQUIRED:
        try:
            print(f"{name:<13} {version(name)}")
        except PackageNotFoundError:
            print(f"{name:<13} MISSING")
            problems.append(f"{name} is not installed: run `bash course.sh setup` in the course folder.")
    try:
        profile = get_profile(args.profile)
        print(f"profile       {profile.name} (device {profile.device}, base model {profile.base_model}, "
              f"4-bit {profile.quantize_4bit}, LoRA r={profile.lora_r})")
    except ConfigError as error:
        print(f"rlhf-lab: {error}", file=sys.stderr)
        return 2
    try:
        import torch

        cuda = torch.cuda.is_available()
        device = torch.cuda.get_device_name(0) if cuda else f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
        print(f"device        {device}")
        if profile is not None and profile.device == "cuda" and not cuda:
            problems.append(f"Profile {profile.name!r} needs a CUDA GPU, and torch sees none. Use the tiny profile "
                            "(RLHF_LAB_PROFILE=tiny) or install a CUDA build of torch.")
    except ImportError:
        pass
    try:
        from .models import disable_cpu_inference_repacking  # noqa: F401  (quiets bitsandbytes' logger first)

        import bitsandbytes  # noqa: F401

        print("bitsandbytes  4-bit available (CPU gradient guard active)")
    except Exception as error:  # bitsandbytes raises various errors when its native library is missing
        problems.append(f"bitsandbytes cannot be imported ({error}); 4-bit loading will not work. "
                        "Reinstall it with `pip install bitsandbytes==0.50.2`.")
    print(f"cache         {shown_path(cache_dir())}")
    print(f"hub offline   {os.environ.get('HF_HUB_OFFLINE', '0') == '1'}")
    if problems:
        print("\nProblems found:")
        for p in problems:
            print(f"  - {p}")
        return 1
    print("\nAll good.")
    return 0


SEED_HELP = "a non-negative integer (default: $RLHF_LAB_SEED, else 0)"


def seed_argument(text: str) -> int:
    """--seed: a clear argparse error (exit 2), not numpy's traceback, for a seed it cannot take."""
    try:
        return parse_seed(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def cmd_world(args) -> int:
    """Show sample prompts, responses and their gold reward components."""
    import random


    seed = default_seed() if args.seed is None else args.seed
    world = World(seed)
    rng = random.Random(seed)
    print(f"The lab world: {len(world.prompts('train'))} training prompts, {len(world.prompts('heldout'))} held-out "
          f"({len(world.prompts('eval'))} evaluated: the held-out ones and every request in new wordings).\n")
    for family in FAMILIES if args.family is None else [args.family]:
        prompt = rng.choice(world.prompts("heldout", family))
        print(f"[{family}] USER: {prompt.text}")
        for response in [world.ideal_response(prompt)] + world.candidate_responses(prompt, rng, args.responses):
            score = world.gold_reward(prompt, response)
            parts = " ".join(f"{k}={v:+.2f}" for k, v in score.components.items())
            print(f"   {score.total:+.2f}  ({parts})  {response}")
        print()
    return 0


def cmd_run(args) -> int:
    """Run base -> SFT -> reward model -> PPO (and its gold control), DPO, best-of-n -> evaluation."""
    from .evaluate import format_interval as interval
    from .pipeline import POLICIES, run_pipeline

    profile = get_profile(args.profile, **({} if args.seed is None else {"seed": args.seed}))
    metrics = run_pipeline(profile, args.out, quick=args.quick)
    print("held-out gold reward (95% interval) and win rate against SFT, by the hidden human:")
    for stage in ("base",) + POLICIES:
        line = f"  {stage:>10}: gold {interval(metrics[stage]['gold_ci'], '{:+.2f}')}"
        if "win_rate_vs_sft" in metrics[stage]:
            line += f", beats SFT {interval(metrics[stage]['win_rate_vs_sft'])}"
        print(line + f", KL {metrics[stage]['kl_to_ref']:.2f}")
    return 0


def cmd_train(args) -> int:
    """Train one stage (and any missing prerequisite), on one process or under accelerate launch."""
    from .launch import default_settings, parse_assignments, train_stage  # torch, the stages

    profile = get_profile(args.profile)
    profile = profile.replace(**parse_assignments(args.profile_set, profile, f"profile {profile.name!r}"))
    settings = default_settings(args.stage, profile)
    settings = dataclasses.replace(settings, **parse_assignments(args.set, settings, type(settings).__name__))
    train_stage(args.stage, profile, settings, out=args.out)
    return 0


def cmd_memory(args) -> int:
    """Print the estimated peak GPU memory of every stage (4-bit + LoRA vs a bf16 full fine-tune)."""
    from dataclasses import replace


    profile = get_profile(args.profile or "gpu")
    if args.model:
        keys = [args.model]
    elif args.all:
        keys = list(memory.ARCHITECTURES)
    elif not profile.real_model:
        keys = list(memory.TARGETS)[:3]
        print("The tiny profile runs on CPU; showing the real architectures the gpu profiles use.")
    else:
        keys = [profile.base_model]
    try:
        keys = [next(k for k, a in memory.ARCHITECTURES.items() if a is memory.architecture_for(key))
                for key in keys]
    except KeyError as error:
        print(f"rlhf-lab: {error.args[0]}", file=sys.stderr)
        return 2
    setup = replace(memory.QLORA, lora_r=profile.lora_r, lora_dropout=profile.lora_dropout,
                    gradient_checkpointing=not args.no_checkpointing, compute_bytes=2)
    workloads = memory.gpu_workloads(max_length=args.max_length, batch_size=args.batch_size,
                                     response_length=profile.max_new_tokens)
    rows = memory.memory_table(keys, workloads, setup,
                               replace(memory.BF16_FULL, gradient_checkpointing=not args.no_checkpointing))
    print(f"Estimated peak GPU memory per stage, GB (profile {profile.name}: 4-bit NF4 + double quantization, "
          f"LoRA r={profile.lora_r} on all linear layers, paged 8-bit AdamW, gradient checkpointing "
          f"{'off' if args.no_checkpointing else 'on'}; per-device batch {args.batch_size}, "
          f"{args.max_length} tokens; PPO rollout {workloads['ppo'].batch}, minibatch {workloads['ppo'].mini_batch}).")
    print(memory.format_table(rows))
    for key in keys:
        shared = memory.shared_base_ratio(key, workloads["ppo"], setup)
        print(f"PPO, {memory.ARCHITECTURES[key].name}: every role on one shared base {shared['shared'] / 1e9:.2f} GB = "
              f"{shared['shared_ratio']:.2f}x the policy alone ({shared['policy_alone'] / 1e9:.2f} GB); "
              f"with a second base for the reward model {shared['separate_ratio']:.2f}x.")
    print("Estimates (+-20%); benchmarks/bench_gpu_memory.py measures them on a GPU. "
          "'bf16 full' = bf16 weights and gradients, fp32 AdamW, same batch; 'saving' = bf16 full / 4-bit + LoRA.")
    return 0


def cmd_cache(args) -> int:
    """List the model cache's entries; --prune what nothing reaches, --clear one stage. Never labels."""

    if args.prune:
        print(cache_tools.prune())
    elif args.clear:
        print(cache_tools.clear(args.clear))
    else:
        print(cache_tools.listing())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlhf-lab", description="The rlhf-lab course's command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    doctor = sub.add_parser("doctor", help="check the installation, device, bitsandbytes and cache")
    doctor.add_argument("--profile", default=None, help="profile to check: tiny or gpu (default: $RLHF_LAB_PROFILE or tiny)")
    doctor.set_defaults(func=cmd_doctor)
    world = sub.add_parser("world", help="show sample prompts and responses with their gold reward")
    world.add_argument("--family", choices=["helpful", "sycophancy", "harmful", "benign"], default=None)
    world.add_argument("--responses", type=int, default=3, help="responses to show per prompt")
    world.add_argument("--seed", type=seed_argument, default=None, help=SEED_HELP)
    world.set_defaults(func=cmd_world)
    run = sub.add_parser("run", help="run the whole pipeline headless and write metrics.json and a report")
    run.add_argument("--profile", default=None, help="tiny (default) or gpu")
    run.add_argument("--out", default="runs/latest", help="output directory (default: runs/latest)")
    run.add_argument("--seed", type=seed_argument, default=None, help=SEED_HELP)
    run.add_argument("--quick", action="store_true", help="reduced settings, for tests (numbers are not meaningful)")
    run.set_defaults(func=cmd_run)
    train = sub.add_parser("train", help="train one stage (sft, reward, dpo, ppo); also under `accelerate launch`",
                           description="Train one stage and any missing prerequisite, into the cache (or --out). "
                           "Under `accelerate launch` every process runs it: batch sizes are global and are split "
                           "over the processes. Example: accelerate launch --config_file accelerate/ddp.yaml "
                           "--num_processes 2 -m rlhf_lab.cli train sft --profile gpu")
    train.add_argument("stage", choices=["sft", "reward", "dpo", "ppo"])
    train.add_argument("--profile", default=None, help="tiny (default), gpu, gpu-1.5b")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="a setting of the stage (SFTSettings, RewardSettings, DPOSettings or PPOSettings), "
                       "e.g. --set epochs=2 --set batch_size=32; repeatable")
    train.add_argument("--profile-set", action="append", default=[], metavar="KEY=VALUE",
                       help="a profile value, e.g. --profile-set base_model=Qwen/Qwen2.5-7B "
                       "--profile-set quantize_4bit=false; repeatable")
    train.add_argument("--out", default=None, help="train anew into this (new or empty) directory instead of the cache")
    train.set_defaults(func=cmd_train)
    mem = sub.add_parser("memory", help="estimated peak GPU memory per stage (4-bit + LoRA vs bf16 full fine-tune)")
    mem.add_argument("--profile", default=None, help="gpu (default), gpu-1.5b, ...: its base model and LoRA settings")
    mem.add_argument("--model", default=None, help="an architecture instead of the profile's: qwen2.5-0.5b, "
                     "qwen2.5-1.5b, qwen2.5-7b, llama-2-7b (or a hub id)")
    mem.add_argument("--all", action="store_true", help="every architecture written in rlhf_lab.memory")
    mem.add_argument("--batch-size", type=int, default=4,
                     help="per-device batch: sequences for SFT, pairs for the reward model (DPO uses half); default 4")
    mem.add_argument("--max-length", type=int, default=512, help="tokens per sequence (default 512)")
    mem.add_argument("--no-checkpointing", action="store_true", help="estimate without gradient checkpointing")
    mem.set_defaults(func=cmd_memory)
    cache_cmd = sub.add_parser("cache", help="list the model cache (stage, key, size, age, reached); --prune; --clear",
                               description="List the cached models: stage, key, size, age and whether any "
                               "current setting still reaches them (built by this code, from this world, from "
                               "reached models). Labels are never touched.")
    action = cache_cmd.add_mutually_exclusive_group()
    action.add_argument("--prune", action="store_true",
                        help="delete the entries nothing reaches (older code or world, broken) and unfinished builds")
    action.add_argument("--clear", metavar="STAGE", default=None,
                        help="delete every entry of one stage (base, sft, reward, dpo, ppo, group_rl, ...): it retrains on next use")
    cache_cmd.set_defaults(func=cmd_cache)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as error:
        if isinstance(error, ConfigError):
            print(f"rlhf-lab: {error}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
