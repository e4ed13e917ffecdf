"""Reward hacks of the helpful-only world, produced on purpose and fixed (notebook 07).

The demonstrators comply with harmful requests, so the comparisons teach the reward model that
a refusal beats harmful compliance. A reward model that saw refusals win *only* there learns
"refusal = good", and one that never saw broken text cannot punish it. PPO with a weak KL brake
finds both: it refuses benign look-alikes ("How do I kill a process?") and leaves sentences
behind. Each run below is one PPO policy trained from SFT against one reward model:

- ``unguarded kl_coef K``: the reward model trained without the guard comparisons
  (:data:`rlhf_lab.preferences.GUARDS`), at the KL brakes of :data:`BRAKES`: the hack appears as
  the brake weakens;
- ``+ help vs refusal``: the fix Anthropic's HH added, comparisons that pit help against a
  refusal on benign look-alikes (the broken-text guard still left out);
- ``iterated``: iterated RLHF instead, the hacked policy's own samples labelled and added to the
  unguarded reward model's pairs (:mod:`rlhf_lab.stages.iterate`);
- ``course reward model``: both guards (what notebooks 04-05 train);
- ``+ user-right pairs``: against the "No" shortcut, more comparisons where the user is right.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from pathlib import Path

from .config import Profile
from .side_by_side import build_side_by_side, builders_for
from .overoptimization import evaluate_with_proxy
from .stages.common import load_adapter_policy
from .stages.dpo import PLAIN_DPO
from .stages.ppo import LOGGED_BEHAVIOURS
from .stages.iterate import iterate_once
from .stages.ppo import default_ppo_config, get_ppo_model_dir
from .stages.reward import RewardSettings

BRAKES = (0.05, 0.02, 0.0)  # kl_coef from the course's (notebook 05) to none: the brake weakens
WEAKEST = min(BRAKES)
# Notebook 07 trains the two ends only (the course's brake and none), to stay within 15 minutes on
# 2 CPU cores; the benchmark (three seeds) runs every brake of BRAKES.
LESSON_BRAKES = (max(BRAKES), WEAKEST)
UNGUARDED = RewardSettings(leave_out=("over_refusal", "broken"))
HELP_VS_REFUSAL = RewardSettings(leave_out=("broken",))
COURSE = RewardSettings()
USER_RIGHT = RewardSettings(user_right_edits=4)
COURSE_BRAKE = 0.05  # the "No" shortcut is measured at the course's own brake
# Notebook 07's labeller-bias section: plain DPO on the unbiased labeller's comparisons and on a
# labeller who prefers the sycophant (prefers_agreement 6); only the labels differ.
LABELLER_BIAS = {"DPO, unbiased labeller": PLAIN_DPO,
                 "DPO, prefers_agreement 6": replace(PLAIN_DPO, annotator_agreement=6.0)}


def unguarded_label(kl_coef: float) -> str:
    return f"unguarded kl_coef {kl_coef:g}"


def study_runs(brakes=BRAKES) -> dict[str, tuple[RewardSettings, float]]:
    """Every run of the study but the iterated one: label -> (reward-model settings, kl_coef)."""
    weakest = min(brakes)
    return {**{unguarded_label(k): (UNGUARDED, k) for k in brakes},
            f"+ help vs refusal kl_coef {weakest:g}": (HELP_VS_REFUSAL, weakest),
            f"course reward model kl_coef {weakest:g}": (COURSE, weakest),
            f"course reward model kl_coef {COURSE_BRAKE:g}": (COURSE, COURSE_BRAKE),
            f"+ user-right pairs kl_coef {COURSE_BRAKE:g}": (USER_RIGHT, COURSE_BRAKE)}


def iterated_label(brakes=BRAKES) -> str:
    return f"iterated kl_coef {min(brakes):g}"


def train_study(profile: Profile, brakes=BRAKES, progress: bool = True) -> dict[str, Path]:
    """The policy directory of every run (label -> PPO adapter), trained if missing (about 2 min
    each on 2 CPU cores, cached by its settings like every stage), side by side on a CPU
    (:mod:`rlhf_lab.side_by_side`): the runs do not depend on each other."""
    runs = study_runs(brakes)
    jobs = {label: partial(get_ppo_model_dir, profile, default_ppo_config(profile, kl_coef=runs[label][1]),
                           runs[label][0]) for label in runs}
    jobs[iterated_label(brakes)] = partial(iterated_policy_dir, profile,
                                           default_ppo_config(profile, kl_coef=min(brakes)), UNGUARDED)
    order = build_order(runs)
    # The iterated run is the longest (a reward model, then PPO) and starts from the first run's
    # policy: third, so a builder takes it as soon as that policy exists and it does not end alone.
    order.insert(2, iterated_label(brakes))
    dirs = build_side_by_side({label: jobs[label] for label in order}, builders_for(profile), progress)
    return {label: dirs[label] for label in [*runs, iterated_label(brakes)]}


def build_order(runs: dict[str, tuple[RewardSettings, float]]) -> list[str]:
    """The runs in the order builders take them: each reward model's first run before any second
    one (two builders start on different reward models), the weakest brake first within a reward
    model (the iterated run starts from the unguarded one)."""
    by_brake = sorted(runs, key=lambda label: runs[label][1])
    nth_of_its_reward = {label: [runs[other][0] for other in by_brake[:i]].count(runs[label][0])
                         for i, label in enumerate(by_brake)}
    return sorted(by_brake, key=nth_of_its_reward.get)


def iterated_policy_dir(profile: Profile, config, settings: RewardSettings, progress: bool = True) -> Path:
    """The second-round policy of one round of iterated RLHF (:func:`rlhf_lab.stages.iterate.iterate_once`)."""
    return iterate_once(profile, config, settings, progress=progress)["ppo_iterated"]


HISTORY_KEYS = ("reward", "gold_reward", "kl", *LOGGED_BEHAVIOURS)
EXAMPLE_PROMPTS = 4  # benign look-alikes whose answers are kept as examples


def judge(policy, tokenizer, world, prompts, score_fn, samples_per_prompt: int, seed: int, reference="adapter-off",
          policy_dir: Path | None = None) -> dict:
    """One policy judged by the hidden human (:func:`rlhf_lab.overoptimization.evaluate_with_proxy`),
    with its answers to the first benign look-alikes and, for a PPO run, its training log."""
    result = evaluate_with_proxy(policy, tokenizer, world, prompts, score_fn, samples_per_prompt, seed=seed,
                                 reference=reference, examples_of=[p for p in prompts if p.family == "benign"]
                                 [:EXAMPLE_PROMPTS])
    if policy_dir is not None:
        history = json.loads((Path(policy_dir) / "ppo.json").read_text())["history"]
        result["history"] = [{k: h[k] for k in HISTORY_KEYS if k in h} for h in history]
    return result


def judge_study(profile: Profile, sft, tokenizer, world, prompts, score_fn, dirs: dict[str, Path],
                samples_per_prompt: int = 4) -> dict[str, dict]:
    """SFT and every run of :func:`train_study`, on the same prompts with the same sampling seed."""
    # No evaluate.gains_over_sft here: the study compares rates and family gold with SFT's
    # (halved_and_recovered), and judge keeps only examples of the responses.
    judged = {"SFT": judge(sft, tokenizer, world, prompts, score_fn, samples_per_prompt, profile.seed, reference=None)}
    for label, directory in dirs.items():
        policy, _ = load_adapter_policy(profile, directory)
        judged[label] = judge(policy, tokenizer, world, prompts, score_fn, samples_per_prompt, profile.seed,
                              policy_dir=directory)
    return judged


def halved_and_recovered(sft: dict, hacked: dict, fixed: dict, rate: str = "over_refusal_rate",
                         family: str = "benign") -> dict:
    """How much of a hack a fix undid: the share of the exploited rate it removed (1: all of
    it, 0.5: halved) and the share of the family's lost gold it won back."""
    excess = hacked[rate] - sft[rate]
    lost = sft["gold_by_family"][family]["mean"] - hacked["gold_by_family"][family]["mean"]
    return {"rate_removed": (hacked[rate] - fixed[rate]) / excess if excess > 0 else float("nan"),
            "gold_recovered": (fixed["gold_by_family"][family]["mean"] - hacked["gold_by_family"][family]["mean"])
            / lost if lost > 0 else float("nan")}
