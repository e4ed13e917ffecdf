"""The whole pipeline, headless: base -> SFT -> reward model -> PPO (and its control on the
gold reward), DPO and best-of-n -> evaluation with intervals.

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

from . import cache, models, plots
from .config import Profile
from .evaluate import (METRIC_FORMATS, behaviour_ci, best_of_n_curve, evaluate_policy, evaluate_responses,
                       format_interval, gains_over_sft, gold_ci, heldout_prompts, repeat_prompts, win_rate_ci)
from .preferences import sample_pairs
from .stages.dpo import DPOSettings, get_dpo_model_dir
from .stages.common import load_adapter_policy
from .stages.pretrain import get_base_model_dir, get_tokenizer
from .stages.ppo import default_ppo_config, get_ppo_model_dir
from .scoring import pair_accuracy, score_responses
from .stages.reward import RewardSettings, get_reward_model_dir, load_reward_model, reward_report
from .stages.sft import SFTSettings, get_sft_model_dir, load_sft_model

POLICIES = ("sft", "ppo_gold", "ppo", "dpo", "best_of_n")
BEST_OF_NS = (1, 2, 4, 8, 16)


@dataclasses.dataclass(frozen=True)
class PipelineSettings:
    """Every stage's settings. Later stages always build on this pipeline's own SFT model."""

    sft: SFTSettings = SFTSettings()
    reward: RewardSettings = RewardSettings()
    dpo: DPOSettings = DPOSettings()
    ppo_changes: tuple = ()  # (name, value) pairs applied to default_ppo_config
    # Sampled responses per held-out prompt, as the tiny profile's eval_samples: distinct requests,
    # not samples, set the intervals (config.Profile.eval_samples says what was measured).
    samples_per_prompt: int = 2

    def for_this_sft(self) -> "PipelineSettings":
        return dataclasses.replace(self, reward=dataclasses.replace(self.reward, sft=self.sft),
                                   dpo=dataclasses.replace(self.dpo, sft=self.sft))


def quick_settings(profile: Profile) -> tuple[Profile, PipelineSettings]:
    """A reduced run for tests: every stage runs for real, for a few steps (numbers meaningless)."""
    profile = profile.replace(pretrain_steps=30, preference_pairs=64, eval_prompts=24)
    return profile, PipelineSettings(
        sft=SFTSettings(epochs=1.0), reward=RewardSettings(epochs=1.0, sft_samples_per_prompt=0),
        dpo=DPOSettings(epochs=1.0, sft_samples_per_prompt=0),
        ppo_changes=(("steps", 2), ("batch_size", 8), ("mini_batch_size", 8), ("ppo_epochs", 1)),
        samples_per_prompt=2).for_this_sft()


def run_pipeline(profile: Profile, out_dir, quick: bool = False, progress: bool = True) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = PipelineSettings()
    if quick:
        profile, settings = quick_settings(profile)
    settings = settings.for_this_sft()
    torch.manual_seed(profile.seed)
    world = cache.world_for(profile.seed)
    prompts = heldout_prompts(world, profile.eval_prompts)
    n = settings.samples_per_prompt
    repeated = repeat_prompts(prompts, n)
    timings, clock = {}, time.perf_counter()

    def lap(name):
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now

    base_dir = get_base_model_dir(profile, progress=progress)
    lap("pretrain")
    get_sft_model_dir(profile, settings.sft, progress=progress)
    lap("sft")
    reward_dir = get_reward_model_dir(profile, settings.reward, progress=progress)
    lap("reward_model")
    ppo_config = default_ppo_config(profile, **dict(settings.ppo_changes))
    ppo_gold_dir = get_ppo_model_dir(profile, ppo_config, settings.reward, progress=progress, reward="gold")
    lap("ppo_gold")
    ppo_dir = get_ppo_model_dir(profile, ppo_config, settings.reward, progress=progress)
    lap("ppo")
    dpo_dir = get_dpo_model_dir(profile, settings.dpo, progress=progress)
    lap("dpo")

    tokenizer = get_tokenizer(profile)
    load = dict(quantize_4bit=profile.quantize_4bit, device=profile.device, trainable=False)
    base = models.load_model(base_dir, **load)
    sft, _ = load_sft_model(profile, settings.sft, progress=progress)

    # Each model samples with its own seed (the report's numbers since the first run), not the
    # common random numbers gains_over_sft recommends; the pairs are still the same prompts.
    def evaluate(model, reference, seed_offset):
        return evaluate_policy(model, tokenizer, world, prompts, n, profile.max_new_tokens,
                               profile.seed * 100 + seed_offset, reference)

    metrics, responses = {}, {}
    metrics["base"], responses["base"] = evaluate(base, None, 1)
    metrics["sft"], responses["sft"] = evaluate(sft, base, 2)
    for i, (name, directory) in enumerate((("ppo_gold", ppo_gold_dir), ("ppo", ppo_dir), ("dpo", dpo_dir))):
        policy, _ = load_adapter_policy(profile, directory)
        metrics[name], responses[name] = evaluate(policy, "adapter-off", 3 + i)

    reward_model, _ = load_reward_model(profile, reward_dir)

    def reward_scores(user_texts, texts):
        return score_responses(reward_model, tokenizer, user_texts, texts)

    curve, chosen = best_of_n_curve(sft, tokenizer, prompts, reward_scores, BEST_OF_NS if not quick else (1, 2),
                                    profile.max_new_tokens, seed=profile.seed * 100 + 7)
    top = curve[-1]["n"]
    responses["best_of_n"] = [r for r in chosen[top] for _ in range(n)]  # one pick per prompt, vs every sample
    metrics["best_of_n"] = {**evaluate_responses(repeated, responses["best_of_n"]),
                            "gold_ci": gold_ci(repeated, responses["best_of_n"]),
                            "behaviour_ci": behaviour_ci(repeated, responses["best_of_n"]), "n": top,
                            "kl_to_ref": curve[-1]["kl"], "curve": curve}
    for name in POLICIES[1:]:
        metrics[name].update(gains_over_sft(repeated, responses[name], responses["sft"]))
    metrics["sft"]["win_rate_vs_base"] = win_rate_ci(repeated, responses["sft"], responses["base"])
    metrics["ppo"]["win_rate_vs_dpo"] = win_rate_ci(repeated, responses["ppo"], responses["dpo"])
    lap("evaluation")

    rm = reward_report(reward_dir)
    # (c) the reward model on pairs of the PPO policy's own samples: what RL asked it about.
    on_ppo = pair_accuracy(reward_model, tokenizer, sample_pairs(prompts, responses["ppo"], n))
    metrics["reward_model"] = {**{k: rm[k] for k in ("heldout_accuracy", "gold_correlation", "heldout_pairs",
                                                      "pairs", "accuracy_by_family", "sft_sample_accuracy",
                                                      "sft_sample_accuracy_by_family")},
                               "ppo_sample_accuracy": on_ppo["accuracy"],
                               "ppo_sample_accuracy_by_family": on_ppo["by_family"]}
    histories = {name: json.loads((d / "ppo.json").read_text())["history"]
                 for name, d in (("ppo", ppo_dir), ("ppo_gold", ppo_gold_dir))}
    metrics["timings_s"] = timings
    metrics["profile"] = profile.name
    metrics["seed"] = profile.seed
    metrics["quick"] = quick
    metrics["heldout_prompts"] = len(prompts)
    metrics["samples_per_prompt"] = n

    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out_dir / "samples.json").write_text(json.dumps(
        [{"prompt": p.text, "family": p.family, **{s: responses[s][i * n] for s in responses}}
         for i, p in enumerate(prompts)], indent=1))
    write_figures(out_dir, metrics, histories)
    (out_dir / "report.md").write_text(markdown_report(metrics, prompts, responses))
    if progress:
        print(f"Wrote {out_dir / 'metrics.json'}, {out_dir / 'report.md'} and figures in {sum(timings.values()):.0f} s.")
    return metrics


def write_figures(out_dir: Path, metrics: dict, histories: dict) -> None:
    import matplotlib.pyplot as plt

    figures = {
        "behaviours.png": plots.behaviour_shift({s: metrics[s]["behaviour_ci"] for s in ("sft",) + POLICIES[1:]}),
        "gold_by_stage.png": plots.gold_components_by_stage(
            {s: metrics[s] for s in ("base", "sft", "ppo_gold", "ppo", "dpo", "best_of_n")}),
        "ppo_curves.png": plots.ppo_curves(histories["ppo"]),
        "win_rates.png": plots.win_rates({f"{s} vs SFT": metrics[s]["win_rate_vs_sft"] for s in POLICIES[1:]}),
        "best_of_n.png": plots.best_of_n(metrics["best_of_n"]["curve"]),
    }
    for name, fig in figures.items():
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)


# The report's rows, in this order; names and formats: evaluate.METRIC_FORMATS.
METRIC_ROWS = ("harmful_compliance_rate", "sycophancy_rate", "contrarian_rate", "misstated_fact_rate", "over_refusal_rate",
               "right_answer_rate", "polite_rate", "well_formed_rate", "gold_reward", "kl_to_ref", "refusal_rate", "distinct_2",
               "mean_length_words", "spurious_closer_rate", "capability_probe")


def markdown_report(metrics: dict, prompts, responses) -> str:
    stages = ("base",) + POLICIES
    rows = ["| | " + " | ".join(stages) + " |", "|---|" + "---|" * len(stages)]
    for key in METRIC_ROWS:
        fmt = METRIC_FORMATS[key][1]
        rows.append(f"| {key} | " + " | ".join(
            fmt.format(metrics[s][key]) if key in metrics[s] else "n/a" for s in stages) + " |")
    n = metrics["samples_per_prompt"]
    samples = []
    for j, p in enumerate(prompts[:: max(1, len(prompts) // 6)][:6]):
        i = prompts.index(p) * n
        samples.append(f"- **{p.text}** ({p.family})\n" + "\n".join(f"  - {s}: {responses[s][i]}" for s in stages))
    rm = metrics["reward_model"]
    wins = "; ".join(f"{s} beats SFT {format_interval(metrics[s]['win_rate_vs_sft'])}, gold "
                     f"{format_interval(metrics[s]['gold_gain_vs_sft'], '{:+.2f}')} over SFT's" for s in POLICIES[1:])
    return "\n".join([
        "# rlhf-lab run", "",
        f"Profile `{metrics['profile']}`, seed {metrics['seed']}"
        f"{' (quick: reduced settings, numbers not meaningful)' if metrics['quick'] else ''}; "
        f"{metrics['heldout_prompts']} held-out prompts x {n} samples, judged by the gold reward; "
        "95% intervals by bootstrap over requests (a fact, or an object and a verb).", "",
        *rows, "",
        f"- Win rates (ties count half) and paired gold gains: {wins}.",
        f"- Reward model accuracy vs gold: {rm['heldout_accuracy']:.1%} on templated pairs, "
        f"{rm['sft_sample_accuracy']:.1%} on pairs of SFT samples, {rm['ppo_sample_accuracy']:.1%} on pairs of "
        f"PPO samples ({rm['pairs']} training pairs).",
        f"- Stage timings (s): {json.dumps(metrics['timings_s'])}", "",
        "![behaviours](behaviours.png) ![gold by stage](gold_by_stage.png) ![PPO](ppo_curves.png) ![win rates](win_rates.png) "
        "![best-of-n](best_of_n.png)", "",
        "## Samples", *samples, ""])
