"""The whole pipeline, headless: base -> SFT -> reward model -> PPO and DPO -> evaluation.

``run_pipeline(profile, out_dir)`` is what ``rlhf-lab run`` calls. Every stage comes
from the cache when it was built before with the same settings, so the timings of a
second run are near zero; the benchmark uses a fresh cache.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch

from . import models, plots
from .config import Profile
from .evaluate import evaluate_model, heldout_prompts, win_rate
from .stages.dpo import DPOSettings, get_dpo_model_dir, load_adapter_policy
from .stages.pretrain import get_base_model_dir, get_tokenizer
from .stages.reward import RewardSettings, get_reward_model_dir, reward_report
from .stages.ppo import default_ppo_config, get_ppo_model_dir
from .stages.sft import SFTSettings, get_sft_model_dir
from .world import World


@dataclasses.dataclass(frozen=True)
class PipelineSettings:
    sft: SFTSettings = SFTSettings()
    reward: RewardSettings = RewardSettings()
    dpo: DPOSettings = DPOSettings()
    ppo_changes: tuple = ()  # (name, value) pairs applied to default_ppo_config

    def __post_init__(self):
        # Every later stage builds on this pipeline's own SFT model.
        object.__setattr__(self, "reward", dataclasses.replace(self.reward, sft=self.sft))
        object.__setattr__(self, "dpo", dataclasses.replace(self.dpo, sft=self.sft))


def quick_settings(profile: Profile) -> tuple[Profile, PipelineSettings]:
    """A reduced run for tests: every stage runs for real, for a few steps (numbers meaningless)."""
    profile = profile.replace(pretrain_steps=30, preference_pairs=64, eval_prompts=24)
    return profile, PipelineSettings(
        sft=SFTSettings(epochs=1.0), reward=RewardSettings(epochs=1.0), dpo=DPOSettings(epochs=1.0),
        ppo_changes=(("steps", 2), ("batch_size", 8), ("mini_batch_size", 8), ("ppo_epochs", 1)))


def run_pipeline(profile: Profile, out_dir, quick: bool = False, progress: bool = True) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = PipelineSettings()
    if quick:
        profile, settings = quick_settings(profile)
    torch.manual_seed(profile.seed)
    world = World(profile.seed)
    prompts = heldout_prompts(world, profile.eval_prompts)
    timings, clock = {}, time.perf_counter()

    def lap(name):
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now

    def evaluate(model, reference):
        return evaluate_model(model, tokenizer, world, prompts, profile.max_new_tokens, profile.seed, reference)

    base_dir = get_base_model_dir(profile, progress=progress)
    lap("pretrain")
    tokenizer = get_tokenizer(profile)
    base = models.load_model(base_dir, quantize_4bit=profile.quantize_4bit, device=profile.device, trainable=False)
    sft_dir = get_sft_model_dir(profile, settings.sft, progress=progress)
    lap("sft")
    reward_dir = get_reward_model_dir(profile, settings.reward, progress=progress)
    lap("reward_model")
    ppo_config = default_ppo_config(profile, **dict(settings.ppo_changes))
    ppo_dir = get_ppo_model_dir(profile, ppo_config, settings.reward, progress=progress)
    lap("ppo")
    dpo_dir = get_dpo_model_dir(profile, settings.dpo, progress=progress)
    lap("dpo")

    metrics, responses = {}, {}
    metrics["base"], responses["base"] = evaluate(base, None)
    sft = models.load_model(sft_dir, quantize_4bit=profile.quantize_4bit, device=profile.device, trainable=False)
    metrics["sft"], responses["sft"] = evaluate(sft, base)
    ppo, _ = load_adapter_policy(profile, ppo_dir)
    metrics["ppo"], responses["ppo"] = evaluate(ppo, "adapter-off")
    dpo, _ = load_adapter_policy(profile, dpo_dir)
    metrics["dpo"], responses["dpo"] = evaluate(dpo, "adapter-off")
    metrics["sft"]["win_rate_vs_base"] = win_rate(prompts, responses["sft"], responses["base"])
    for stage in ("ppo", "dpo"):
        metrics[stage]["win_rate_vs_sft"] = win_rate(prompts, responses[stage], responses["sft"])
    metrics["ppo"]["win_rate_vs_dpo"] = win_rate(prompts, responses["ppo"], responses["dpo"])
    lap("evaluation")

    rm = reward_report(reward_dir)
    metrics["reward_model"] = {k: rm[k] for k in ("heldout_accuracy", "gold_correlation", "heldout_pairs", "pairs")}
    ppo_report = json.loads((ppo_dir / "ppo.json").read_text())
    metrics["timings_s"] = timings
    metrics["profile"] = profile.name
    metrics["quick"] = quick
    metrics["heldout_prompts"] = len(prompts)

    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out_dir / "samples.json").write_text(json.dumps(
        [{"prompt": p.text, "family": p.family, **{s: responses[s][i] for s in responses}}
         for i, p in enumerate(prompts)], indent=1))
    write_figures(out_dir, metrics, ppo_report["history"])
    (out_dir / "report.md").write_text(markdown_report(metrics, prompts, responses))
    if progress:
        print(f"Wrote {out_dir / 'metrics.json'}, {out_dir / 'report.md'} and figures in {sum(timings.values()):.0f} s.")
    return metrics


def write_figures(out_dir: Path, metrics: dict, ppo_history: list[dict]) -> None:
    import matplotlib.pyplot as plt

    figures = {
        "gold_by_stage.png": plots.gold_components_by_stage({s: metrics[s] for s in ("base", "sft", "ppo", "dpo")}),
        "ppo_curves.png": plots.ppo_curves(ppo_history),
        "win_rates.png": plots.win_rates({"SFT vs base": metrics["sft"]["win_rate_vs_base"],
                                          "PPO vs SFT": metrics["ppo"]["win_rate_vs_sft"],
                                          "DPO vs SFT": metrics["dpo"]["win_rate_vs_sft"],
                                          "PPO vs DPO": metrics["ppo"]["win_rate_vs_dpo"]}),
    }
    for name, fig in figures.items():
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)


def markdown_report(metrics: dict, prompts, responses) -> str:
    stages = ("base", "sft", "ppo", "dpo")
    rows = ["| | " + " | ".join(stages) + " |", "|---|" + "---|" * len(stages)]
    for key, fmt in (("gold_reward", "{:+.2f}"), ("kl_to_ref", "{:.2f}"), ("sycophancy_rate", "{:.0%}"),
                     ("refusal_rate", "{:.0%}"), ("over_refusal_rate", "{:.0%}"), ("distinct_2", "{:.2f}"),
                     ("mean_length_words", "{:.1f}"), ("spurious_closer_rate", "{:.0%}"),
                     ("capability_probe", "{:.0%}")):
        rows.append(f"| {key} | " + " | ".join(fmt.format(metrics[s][key]) for s in stages) + " |")
    samples = []
    for i, p in enumerate(prompts[:: max(1, len(prompts) // 6)][:6]):
        j = prompts.index(p)
        samples.append(f"- **{p.text}** ({p.family})\n" + "\n".join(
            f"  - {s}: {responses[s][j]}" for s in stages))
    rm = metrics["reward_model"]
    return "\n".join([
        "# rlhf-lab run", "",
        f"Profile `{metrics['profile']}`{' (quick: reduced settings, numbers not meaningful)' if metrics['quick'] else ''}; "
        f"{metrics['heldout_prompts']} held-out prompts, judged by the gold reward.", "",
        *rows, "",
        f"- SFT beats base on {metrics['sft']['win_rate_vs_base']:.0%} of prompts; PPO beats SFT on "
        f"{metrics['ppo']['win_rate_vs_sft']:.0%}; DPO beats SFT on {metrics['dpo']['win_rate_vs_sft']:.0%}; "
        f"PPO beats DPO on {metrics['ppo']['win_rate_vs_dpo']:.0%} (ties count half).",
        f"- Reward model: held-out pair accuracy vs gold {rm['heldout_accuracy']:.1%}, "
        f"correlation with gold {rm['gold_correlation']:.2f} ({rm['pairs']} training pairs).",
        f"- Stage timings (s): {json.dumps(metrics['timings_s'])}", "",
        "![gold by stage](gold_by_stage.png) ![PPO](ppo_curves.png) ![win rates](win_rates.png)", "",
        "## Samples", *samples, ""])
