# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · When RLHF goes wrong: over-optimisation and reward hacking
#
# The reward model is a *proxy* for the hidden human. Optimise a proxy hard enough and it stops
# measuring what it was meant to (Goodhart's law). Gao, Schulman & Hilton (2022) measured this on
# real models: as a policy moves away from its start (KL), the reward model's score keeps rising
# while the true ("gold") reward rises less, peaks and falls. Here the same, in miniature, where
# the hidden human is known, so every effect is a number:
#
# 1. **Best-of-n** against the reward model, n from 1 to 256: search without training.
# 2. **PPO** against the reward model at several KL coefficients: training.
# 3. **The exploit you can point at**: what the reward model over-rates, and what search and
#    PPO find in the picked answers.
# 4. **Mode collapse**, measured with gauges that broken text cannot fool.
# 5. **Capability regression**: a pretraining skill RL erodes, and PPO-ptx, which keeps it.
# 6. **Iterated RLHF**: show the reward model the policy's own samples, and train again.
# 7. **Sycophancy and verbosity from the labellers**: biased labels, a biased policy.
#
# Both methods are plotted on Gao et al.'s axes: gain over the start against
# d = sqrt(KL to the start), with the paper's fitted forms, best-of-n: d(alpha - beta d), RL:
# d(alpha - beta log d).
#
# *Under test (CI) the notebook runs a reduced grid (n up to 128, two KL
# coefficients) and reads sections 5 to 7 from their benchmarks instead of training them; the
# full grid and seeds 0-2 are in `benchmarks/bench_failure_modes.py`, `bench_iterated.py`,
# `bench_labeller_bias.py` and the README's results.*

# %%
import json
from dataclasses import replace
import os
from pathlib import Path

import torch

from rlhf_lab import lesson, models, plots
from rlhf_lab.config import get_profile
from rlhf_lab.evaluate import heldout_prompts
from rlhf_lab.overoptimization import best_of_n_overoptimization, evaluate_ppo_policy, gao_fit
from rlhf_lab.stages.dpo import PLAIN_DPO, get_dpo_model_dir, load_adapter_policy
from rlhf_lab.stages.iterate import iterate_once
from rlhf_lab.stages.ppo import default_ppo_config, get_ppo_model_dir
from rlhf_lab.stages.pretrain import get_tokenizer
from rlhf_lab.stages.reward import get_reward_model_dir, load_reward_model, score_responses
from rlhf_lab.stages.sft import get_sft_model_dir
from rlhf_lab.world import World

torch.set_num_threads(2)  # the course's budget: 2 CPU cores
lesson.notebook_setup()  # small figures, the libraries' own chatter off
profile = get_profile()  # "tiny" unless the environment says RLHF_LAB_PROFILE=gpu
print(lesson.setup_line(profile))
UNDER_TEST = os.environ.get("CI") == "true"  # the reduced grid keeps CI within its time budget
NS = (1, 2, 4, 8, 16, 32, 64, 128) if UNDER_TEST else (1, 2, 4, 8, 16, 32, 64, 128, 256)
KL_COEFS = (0.0, 0.05) if UNDER_TEST else (0.0, 0.02, 0.05, 0.5)  # 0.05: notebook 05's run, cached
N_PROMPTS = 48
SAMPLES = 4  # sampled answers per prompt when a policy is judged
print(f"best-of-n up to n={NS[-1]} on {N_PROMPTS} held-out prompts; PPO at kl_coef {KL_COEFS}")

# %% [markdown]
# ## The models: SFT, and the reward model of notebook 04
#
# *Takes a few seconds when notebooks 02 and 04 ran before (about 5 min from nothing) on the tiny profile (2 CPU cores).*

# %%
world = World(profile.seed)
tokenizer = get_tokenizer(profile)
reward_dir = get_reward_model_dir(profile)
reward_model, _ = load_reward_model(profile, reward_dir)
sft = models.load_model(get_sft_model_dir(profile), quantize_4bit=profile.quantize_4bit, device=profile.device,
                        trainable=False)
prompts = heldout_prompts(world, N_PROMPTS)  # every family, interleaved


def reward_model_score(user_texts, responses):
    return score_responses(reward_model, tokenizer, user_texts, responses)

# %% [markdown]
# ## 1. Best-of-n: search against the proxy
#
# Sample n answers per prompt from the SFT model and keep the one the reward model scores
# highest. No weights change, yet the picked answers are a new policy, at KL at most
# log n - (n-1)/n nats from SFT.
#
# *Takes about 1 min under test (n up to 128), about 2 min for n up to 256, on the tiny profile (2 CPU cores).*

# %%
bon = best_of_n_overoptimization(sft, tokenizer, prompts, reward_model_score, NS, profile.max_new_tokens,
                                 seed=profile.seed)
rows = bon["rows"]
start = rows[0]
points = {"proxy": [{"kl": r["kl"], "gain": r["proxy"] - start["proxy"]} for r in rows],
          "gold": [{"kl": r["kl"], "gain": r["gold"] - start["gold"], "low": r["gold_low"] - start["gold"],
                    "high": r["gold_high"] - start["gold"]} for r in rows]}
fig = plots.overoptimization(points, bon["fit"], "best_of_n", "Best-of-n against the reward model")
for name, fit in bon["fit"].items():
    print(f"{name:>5}: alpha {fit['alpha']:+.3f}, beta {fit['beta']:+.3f}, fitted peak at d = {fit['peak_d']:.2f}")

# %%
peak = max(rows, key=lambda r: r["gold"])
top = rows[-1]
lesson.check_claim("the reward model's score of the pick rises with n, to its highest at the largest n",
                   top["proxy"] == max(r["proxy"] for r in rows) and top["proxy"] > start["proxy"],
                   n1=start["proxy"], n_top=top["proxy"])
lesson.check_claim("the gold reward of the pick at the largest n is below its peak",
                   top["gold"] < peak["gold"], peak_n=peak["n"], peak_gold=peak["gold"], gold_top=top["gold"])

# %% [markdown]
# **What to look for:** the blue points (what the search optimises) climb all the way; the green
# ones (what the hidden human thinks of the same picks) do not follow: the more answers the
# reward model chooses from, the more its choice lands on what it *over-rates*. Whether the drop
# from the gold peak is larger than the 95% interval (the green bars) depends on the seed: the
# README's results table gives all three.
#
# ## The exploit: what does the reward model pick?

# %%
for r in rows:
    print(f"n={r['n']:>3}: opens politely {r['polite_rate']:4.0%}, well-formed {r['well_formed_rate']:4.0%}, "
          f"says the closer {r['closer_rate']:4.0%}")
lesson.check_claim("the picks at the largest n are well-formed less often than single samples",
                   top["well_formed_rate"] < start["well_formed_rate"], n1=start["well_formed_rate"],
                   n_top=top["well_formed_rate"])
lesson.check_claim("the closer \"I hope this helps.\" is (almost) never picked: the SFT model does not say it",
                   top["closer_rate"] < 0.05, n1=start["closer_rate"], n_top=top["closer_rate"])
for n, examples in bon["examples"].items():
    print(f"\nbest-of-{n}:")
    for prompt, text in zip(prompts, examples):
        print(f"  {prompt.text!r:48} -> {text!r}")

# %% [markdown]
# The picks at large n are what the reward model over-rates: broken sentences that borrow words
# of good answers ("Yes, you are right, the isGood question."), and fluent answers to *another*
# question ("Four plus six is ten." to a question about a lemon, "To use a car, use a bucket of
# soap and warm water."). It never learned to check that an answer is a sentence, or that it is
# about what was asked: it saw little broken text in its pairs, and two answers that differ only
# in the subject are close to a coin toss for it (notebook 04). Polite openers come and go with n
# (the table): the hidden human likes them, but they are not what this search finds.
#
# The world's planted correlate, the closer "I hope this helps.", is *not* exploited here, and
# that is a lesson too: the SFT model never says it (its demonstrations do not), so neither
# search nor PPO can find it. An exploit must first be reachable from the policy's own samples.
# (Two runs below do reach it: PPO-ptx, whose pretraining text contains it, and DPO with a small
# beta, which learns from the labelled pairs directly, not from its own samples.)
#
# ## 2. PPO at several KL coefficients
#
# The KL penalty is RLHF's brake: every token pays `kl_coef * (log pi - log pi_ref)`. Each
# coefficient is one PPO run of notebook 05's settings (cached by its settings, so a rerun is
# instant; kl_coef 0.05 *is* notebook 05's run). The training log keeps, next to the reward
# model's score the policy sees, the gold reward it never sees.
#
# *Takes about 1.5 min per coefficient the first time on the tiny profile (2 CPU cores).*

# %%
runs = {}
for kl_coef in KL_COEFS:
    directory = get_ppo_model_dir(profile, default_ppo_config(profile, kl_coef=kl_coef))  # trains if missing
    runs[kl_coef] = {"dir": directory, "history": json.loads((directory / "ppo.json").read_text())["history"]}
fig = plots.training_curves_by_kl({str(k): r["history"] for k, r in runs.items()},
                                  keys=("reward", "gold_reward", "kl", "entropy"))

# %% [markdown]
# **What to look for:** the reward model's score (left) climbs in every run, fastest with no
# penalty; the gold reward (the policy never sees it) moves much less; the KL grows more, the
# weaker the brake; the entropy (right) says whether the policy is sharpening or wandering.
#
# ## Held-out: the same runs judged by the hidden human

# %%
held_out = {"SFT": evaluate_ppo_policy(sft, tokenizer, world, prompts, reward_model_score, SAMPLES,
                                       seed=profile.seed, reference=None)}
for kl_coef, run in runs.items():
    policy, _ = load_adapter_policy(profile, run["dir"])
    held_out[f"PPO kl_coef {kl_coef}"] = evaluate_ppo_policy(policy, tokenizer, world, prompts, reward_model_score,
                                                            SAMPLES, seed=profile.seed)
lesson.number_table({name: {"gold reward": m["gold"]["mean"], "reward model": m["proxy"], "KL to SFT": m["kl"],
                             "opens politely": m["polite_rate"], "well-formed": m["well_formed"],
                             "capability probe": m["capability_probe"]} for name, m in held_out.items()})

# %%
sft_eval = held_out["SFT"]
loosest = held_out[f"PPO kl_coef {min(KL_COEFS)}"]
tightest = held_out[f"PPO kl_coef {max(KL_COEFS)}"]
lesson.check_claim("PPO raises the reward model's score over SFT on held-out prompts",
                   loosest["proxy"] > sft_eval["proxy"], sft=sft_eval["proxy"], ppo=loosest["proxy"])
lesson.check_claim("a weaker KL brake lets the policy move further from SFT",
                   loosest["kl"] > tightest["kl"], kl_loose=loosest["kl"], kl_tight=tightest["kl"])
lesson.check_claim("... and the proxy's gain is larger than the gold reward's gain",
                   loosest["proxy"] - sft_eval["proxy"] > loosest["gold"]["mean"] - sft_eval["gold"]["mean"],
                   proxy_gain=loosest["proxy"] - sft_eval["proxy"],
                   gold_gain=loosest["gold"]["mean"] - sft_eval["gold"]["mean"])

# %% [markdown]
# ## Mode collapse? Measured, not assumed
#
# RL is often said to collapse a policy onto one way of answering. distinct-n (exercise 07)
# cannot tell: broken text is very "diverse". Two sharper gauges, on the same held-out samples:
#
# - **entropy per token**: how many choices the policy leaves open at each step (0: one choice);
# - **distinct correct answers per prompt**: among the answers the hidden human counts right,
#   how many differ, `(distinct - 1) / (n - 1)` averaged over prompts (0: every right answer is
#   the same string, e.g. never polite any more; 1: no two alike).

# %%
fig = plots.mode_collapse(held_out)
lesson.number_table({name: {"entropy per token": m["entropy_per_token"],
                            "distinct correct answers": m["distinct_correct"]} for name, m in held_out.items()},
                    fmt="{:.2f}")

# %%
lowest_entropy = min(m["entropy_per_token"] for name, m in held_out.items() if name != "SFT")
lesson.check_claim("no PPO run here collapses the whole distribution: entropy per token stays above half of SFT's",
                   lowest_entropy > 0.5 * sft_eval["entropy_per_token"], sft=sft_eval["entropy_per_token"],
                   lowest_ppo=lowest_entropy)

# %% [markdown]
# **What to look for:** the entropy barely moves: 60 PPO steps sharpen some tokens and loosen
# others. The variety of *right* answers, where collapse would show first, does not shrink
# either. The benchmark (three seeds, 4 samples per prompt) has the same, together with one run
# pushed hard on purpose: no KL brake and a 10x learning rate.

# %%
benchmark = json.loads((Path("..") / "benchmarks" / "results" / "failure_modes.json").read_text())


def gauge_by_seed(key):
    """One gauge for SFT, each PPO run, the run pushed hard and DPO at each beta, per seed of the benchmark."""
    return {f"seed {seed}": {"SFT": run["sft"][key], **{f"PPO kl {k}": v[key] for k, v in run["ppo"].items()},
                             "pushed hard": run["pushed_hard"][key],
                             **{f"DPO beta {b}": v[key] for b, v in run.get("dpo", {}).items()}}
            for seed, run in benchmark["runs"].items() if run.get("pushed_hard")}


collapse, entropy = gauge_by_seed("distinct_correct"), gauge_by_seed("entropy_per_token")
print("distinct correct answers per prompt (nan: no prompt with two right answers):")
display(lesson.number_table(collapse, fmt="{:.2f}"))
print("entropy per token (nats):")
display(lesson.number_table(entropy, fmt="{:.2f}"))

# %%
shrink = max(row["SFT"] - value for row in collapse.values() for name, value in row.items() if name.startswith("PPO"))
lesson.check_claim("at the usual learning rate no PPO run collapses the right answers: their variety stays within "
                   "0.05 of SFT's or above, at every KL coefficient and seed", shrink <= 0.05, largest_drop=shrink)
well_formed = {seed: run["pushed_hard"]["well_formed"] for seed, run in benchmark["runs"].items() if run.get("pushed_hard")}
lesson.check_claim("pushed hard, the policy leaves sentences behind: fewer than half of its answers are "
                   "well-formed, in every seed", max(well_formed.values()) < 0.5,
                   **{f"seed_{seed}": v for seed, v in well_formed.items()})
for seed, run in benchmark["runs"].items():
    print(f"seed {seed}, pushed hard: {run['pushed_hard']['examples'][:2]}")

# %% [markdown]
# No collapse at the usual learning rate, then, in any seed. Pushed much harder, the policy runs
# tens of nats away from SFT into text that is no sentence, which the reward model still scores
# well: in one seed it repeats one phrase to every prompt (a collapse, onto nonsense: its entropy
# is SFT's or lower), in the others it wanders (entropy two to three times SFT's). Collapse onto
# one *good* answer, as reported for large models, needs a reward model that reliably likes that
# answer; this one likes broken text first. The KL penalty guards against both.

# %% [markdown]
# ## Capability regression, and PPO-ptx
#
# RL improves what the reward model asks about and nothing else; a skill pretraining taught and
# no reward mentions can erode on the way. InstructGPT (Ouyang et al. 2022) saw its public-NLP
# scores fall after RLHF (the "alignment tax") and fixed most of it with **PPO-ptx**: mix the
# pretraining loss into every PPO update,
# `loss = PPO loss + ptx_coef * (next-token loss on pretraining text)` (`PPOConfig.ptx_coef`; the
# tiny profile feeds it the base model's own corpus). The skill measured here is the
# **capability probe**: 102 counting sequences to continue ("Count : zero one" -> "two three"),
# learned in pretraining and never asked about again.
#
# The run pushed hard above (no KL brake, 10x learning rate), once more with `ptx_coef=1`.
#
# *Under test (CI) these two runs are not trained here (about 4 min); the three-seed numbers
# below come from `benchmarks/bench_failure_modes.py`. Run the notebook yourself and the next
# cell trains both for your seed.*

# %%
PTX_LIVE = not UNDER_TEST
if PTX_LIVE:
    ptx_runs, ptx_histories = {"SFT": sft_eval}, {}
    for label, ptx_coef in (("pushed hard", 0.0), ("pushed hard + ptx", 1.0)):
        config = default_ppo_config(profile, kl_coef=0.0, learning_rate=1e-3, ptx_coef=ptx_coef)
        directory = get_ppo_model_dir(profile, config)  # trains if missing
        policy, _ = load_adapter_policy(profile, directory)
        ptx_runs[label] = evaluate_ppo_policy(policy, tokenizer, world, prompts, reward_model_score, SAMPLES,
                                              seed=profile.seed)
        ptx_histories[label] = json.loads((directory / "ppo.json").read_text())["history"]
    display(lesson.number_table({name: {"capability probe": m["capability_probe"], "gold reward": m["gold"]["mean"],
                                        "reward model score": m["proxy"], "well-formed": m["well_formed"],
                                        "says the closer": m["closer_rate"], "KL to SFT": m["kl"]}
                                 for name, m in ptx_runs.items()}))
    fig = plots.training_curves_by_kl(ptx_histories)

# %%
def probe_and_gold(run):
    """The capability probe and the gold reward of every model in one seed of the benchmark."""
    named = [("SFT", run["sft"]), *((f"PPO kl {k}", v) for k, v in run["ppo"].items()),
             ("pushed hard", run["pushed_hard"]), ("pushed hard + ptx", run["pushed_hard_ptx"])]
    return {name: {"capability probe": m["capability_probe"], "gold reward": m["gold"]["mean"]} for name, m in named}


regression = {f"seed {seed}": probe_and_gold(run) for seed, run in benchmark["runs"].items()
              if run.get("pushed_hard_ptx")}
fig = plots.capability_regression(regression)
lesson.number_table({seed: {name: m["capability probe"] for name, m in rows.items()}
                     for seed, rows in regression.items()}, fmt="{:.0%}")

# %%
lost = {seed: rows["SFT"]["capability probe"] - rows["pushed hard"]["capability probe"]
        for seed, rows in regression.items()}
won_back = {seed: (rows["pushed hard + ptx"]["capability probe"] - rows["pushed hard"]["capability probe"])
            / lost[seed] for seed, rows in regression.items()}
PROBE_ITEMS = len(world.capability_probe())
braked = [round(abs(m["capability probe"] - rows["SFT"]["capability probe"]) * PROBE_ITEMS)
          for rows in regression.values() for name, m in rows.items() if name.startswith("PPO kl")]
lesson.check_claim(f"with its usual learning rate PPO changes only a few of the probe's {PROBE_ITEMS} answers (at "
                   "most 6), at every KL coefficient and seed", max(braked) <= 6, largest_change_in_items=max(braked))
lesson.check_claim("pushed hard, PPO loses at least 10 points of the probe, in every seed",
                   min(lost.values()) >= 0.10, **{s.replace(" ", "_"): v for s, v in lost.items()})
lesson.check_claim("PPO-ptx wins back at least half of what was lost, in every seed",
                   min(won_back.values()) >= 0.5, **{s.replace(" ", "_"): v for s, v in won_back.items()})
lesson.check_claim("... and its gold reward is higher than the pushed run's, in every seed",
                   all(rows["pushed hard + ptx"]["gold reward"] > rows["pushed hard"]["gold reward"]
                       for rows in regression.values()))
lesson.check_claim("... but lower than SFT's, in every seed",
                   all(rows["pushed hard + ptx"]["gold reward"] < rows["SFT"]["gold reward"]
                       for rows in regression.values()))
closer = {seed: (run["sft"]["closer_rate"], run["pushed_hard_ptx"]["closer_rate"])
          for seed, run in benchmark["runs"].items() if run.get("pushed_hard_ptx")}
lesson.check_claim("with ptx, the policy ends with the planted closer \"I hope this helps.\" in over a third of "
                   "its answers (SFT: under 5%), in every seed: the pretraining chats made the exploit reachable",
                   all(ptx > 1 / 3 and sft < 0.05 for sft, ptx in closer.values()),
                   **{f"seed_{seed}": ptx for seed, (sft, ptx) in closer.items()})
for seed, run in benchmark["runs"].items():
    print(f"seed {seed}, pushed hard + ptx: {run['pushed_hard_ptx']['examples'][:2]}")

# %% [markdown]
# **What to look for:** the skill no reward mentions survives ordinary PPO and erodes when PPO
# is pushed far from SFT; the pretraining term holds most of it in place, and it also holds the
# text together, so the gold reward is far better than the pushed run's (and the reward model's
# score far lower: ptx keeps the policy away from the broken text that fooled it). The price is
# the other way round: the pretraining corpus is the lab world's internet, with its rude and
# sycophantic chats, and ptx pulls the policy back toward them, so it does not reach SFT's gold
# reward. It also teaches the policy the internet's closer, "I hope this helps.", which SFT never
# says and the reward model over-rates: with no KL brake, PPO then drives it into most answers
# (the reward hack of this world, finally reachable; run the notebook yourself to see its rate
# climb step by step in the training curves). InstructGPT chose its ptx weight by that trade-off,
# and so can you: `ptx_coef` is one setting.
#
# ## Both on one figure: gain against d = sqrt(KL)
#
# PPO's held-out points (one per KL coefficient) next to best-of-n's, with Gao et al.'s RL form
# fitted to PPO's.

# %%
ppo_points = sorted((m for name, m in held_out.items() if name != "SFT"), key=lambda m: m["kl"])
ppo_plot = {"proxy": [{"kl": m["kl"], "gain": m["proxy"] - sft_eval["proxy"]} for m in ppo_points],
            "gold": [{"kl": m["kl"], "gain": m["gold"]["mean"] - sft_eval["gold"]["mean"],
                      "low": m["gold"]["low"] - sft_eval["gold"]["mean"],
                      "high": m["gold"]["high"] - sft_eval["gold"]["mean"]} for m in ppo_points]}
ppo_fit = None
if len(ppo_points) >= 2 and all(m["kl"] > 0 for m in ppo_points):
    ppo_fit = {name: gao_fit([p["kl"] for p in ppo_plot[name]], [p["gain"] for p in ppo_plot[name]], "rl")
               for name in ("proxy", "gold")}
    for name, fit in ppo_fit.items():
        print(f"PPO {name:>5}: alpha {fit['alpha']:+.3f}, beta {fit['beta']:+.3f}")
fig = plots.overoptimization(ppo_plot, ppo_fit, "rl", "PPO against the reward model, one point per kl_coef")

# %% [markdown]
# **What to look for:** in both methods the distance between the blue and the green points is
# the reward model's error, and it grows with KL. That is what the KL penalty is for, and why
# real RLHF runs watch the KL as closely as the reward.
#
# ## PPO, DPO and best-of-n on one frontier
#
# The DPO paper (Rafailov et al. 2023, Fig. 2) compares methods by the reward they reach for the
# KL they spend. Here the same in miniature, from the three-seed benchmark
# (`benchmarks/bench_failure_modes.py`: PPO at four KL coefficients, plain DPO (`PLAIN_DPO`, no NLL
# term) at four betas, best-of-n from 1 to 256): the gold reward of each policy against its KL to SFT, on the same held-out prompts.

# %%
fig = plots.frontier(benchmark["runs"])
betas = list(next(iter(benchmark["runs"].values())).get("dpo", {}))
lesson.number_table({f"DPO beta {beta}": {f"seed {seed}: {what}": run["dpo"][beta][key] if key != "gold" else
                                          run["dpo"][beta]["gold"]["mean"]
                                          for seed, run in benchmark["runs"].items()
                                          for what, key in (("KL", "kl"), ("gold", "gold"), ("well-formed", "well_formed"))}
                     for beta in betas})

# %%
def frontier_points(run):
    """(method, setting, KL, gold, gold's lower 95% bound) of every policy in one seed."""
    return ([("best-of-n", f"n={r['n']}", r["kl"], r["gold"], r["gold_low"]) for r in run["best_of_n"]["rows"][1:]]
            + [("PPO", f"kl_coef {k}", m["kl"], m["gold"]["mean"], m["gold"]["low"]) for k, m in run["ppo"].items()]
            + [("DPO", f"beta {b}", m["kl"], m["gold"]["mean"], m["gold"]["low"]) for b, m in run["dpo"].items()])


seeds_with_dpo = {seed: run for seed, run in benchmark["runs"].items() if run.get("dpo")}
clear_wins = [f"seed {seed} {method} {setting}" for seed, run in seeds_with_dpo.items()
              for method, setting, kl, gold, low in frontier_points(run)
              if method != "best-of-n" and low > run["sft"]["gold"]["mean"]]
lesson.check_claim("no PPO or DPO run beats SFT's gold reward by more than its 95% interval, in any seed",
                   not clear_wins, clear_wins=", ".join(clear_wins) or "none")
smallest_beta = {seed: run["dpo"][min(run["dpo"], key=float)] for seed, run in seeds_with_dpo.items()}
lesson.check_claim("DPO with the smallest beta moves further from SFT than any other policy here (over 10 nats) "
                   "and ends below SFT's gold reward, in every seed",
                   all(m["kl"] > max(10.0, *(p[2] for p in frontier_points(seeds_with_dpo[seed]) if p[0] != "DPO"))
                       and m["gold"]["mean"] < seeds_with_dpo[seed]["sft"]["gold"]["mean"]
                       for seed, m in smallest_beta.items()),
                   **{f"seed_{seed}_kl": m["kl"] for seed, m in smallest_beta.items()})
lesson.check_claim("DPO with the smallest beta says the planted closer \"I hope this helps.\" in over half of its "
                   "answers (SFT: under 5%), in every seed",
                   all(m["closer_rate"] > 0.5 and seeds_with_dpo[seed]["sft"]["closer_rate"] < 0.05
                       for seed, m in smallest_beta.items()),
                   **{f"seed_{seed}": m["closer_rate"] for seed, m in smallest_beta.items()})
print("DPO, smallest beta:", smallest_beta[next(iter(smallest_beta))]["examples"][:3])
lesson.check_claim("a larger beta keeps DPO closer to SFT: its KL falls as beta rises, in every seed",
                   all(all(run["dpo"][a]["kl"] > run["dpo"][b]["kl"] for a, b in zip(sorted(run["dpo"], key=float),
                                                                                 sorted(run["dpo"], key=float)[1:]))
                       for run in seeds_with_dpo.values()))

# %% [markdown]
# **What to look for:** the frontier is flat near SFT and falls far from it, for all three
# methods. No PPO or DPO run gets clear of SFT's interval in this world (the reward model is the
# weak link: notebook 04); best-of-n's first points (n = 2 or 4) sit at or a little above its own
# n = 1, which is SFT sampled once per prompt (its distance from the dotted SFT line, measured on
# 4 samples per prompt, is sampling noise: mind the bars). Each method fails its own way once it
# moves: best-of-n picks what the reward model
# over-rates, PPO without a brake drifts, and DPO with a small beta runs tens of nats away into
# broken text (its well-formed rate in the table) ending in the planted closer. DPO never samples
# during training: it learns from the labelled pairs themselves, where good answers often end with
# "I hope this helps.", so the spurious feature reaches it directly, while PPO must first sample
# it. Read a method's result with its KL beside it: a gain that costs 30 nats is not the same gain
# as one that costs 0.3.
#
# ## Iterated RLHF: show the reward model what the policy does
#
# The reward model never saw the text PPO produces; that is where it is wrong. Anthropic's HH
# (Bai et al. 2022, section 4.5) closed the loop: collect comparisons of the *current policy's*
# samples, retrain the reward model with them, run RL again. One round here
# (`rlhf_lab.stages.iterate`): sample the PPO policy with no KL brake (`kl_coef` 0, the run
# above) four times on every training prompt, let the same simulated annotator compare its
# samples, train a second reward model on the first one's pairs plus these, and run the same
# PPO from SFT against it.
#
# *Under test (CI) the round is not trained here (about 4 min); the three-seed numbers below come
# from `benchmarks/bench_iterated.py`. Run the notebook yourself and the next cell trains the
# round for your seed.*

# %%
ITERATE_LIVE = not UNDER_TEST
if ITERATE_LIVE:
    dirs = iterate_once(profile, default_ppo_config(profile, kl_coef=0.0))  # trains what is missing
    second_policy, _ = load_adapter_policy(profile, dirs["ppo_iterated"])
    held_out["PPO kl_coef 0.0, iterated"] = evaluate_ppo_policy(second_policy, tokenizer, world, prompts,
                                                               reward_model_score, SAMPLES, seed=profile.seed)
    names = ("SFT", "PPO kl_coef 0.0", "PPO kl_coef 0.0, iterated")
    display(lesson.number_table({name: {"gold reward": held_out[name]["gold"]["mean"],
                                        "contradicts a right user": held_out[name]["contrarian_rate"],
                                        "opens politely": held_out[name]["polite_rate"],
                                        "well-formed": held_out[name]["well_formed"],
                                        "KL to SFT": held_out[name]["kl"]} for name in names}))

# %%
iterated = json.loads((Path("..") / "benchmarks" / "results" / "iterated.json").read_text())["runs"]
rounds = {"SFT": "sft", "PPO round 1": "ppo", "PPO round 2": "ppo_iterated"}
table = {}
for seed, run in iterated.items():
    for label, key in rounds.items():
        stage = run["stages"][key]
        table[f"seed {seed}, {label}"] = {"gold reward": stage["gold_reward"],
                                          "contradicts a right user": stage["contrarian_rate"],
                                          "opens politely": stage["polite_rate"],
                                          "well-formed": stage["well_formed_rate"], "KL to SFT": stage["kl_to_ref"]}
    accuracy = run["reward_model_accuracy_on_round1_samples"]
    print(f"seed {seed}: reward model accuracy on pairs of round 1's own samples (held out): "
          f"first {accuracy['first']['accuracy']:.0%}, second {accuracy['second']['accuracy']:.0%}")
lesson.number_table(table)

# %%
runs = list(iterated.values())
stage = lambda r, key, name: r["stages"][key][name]  # noqa: E731
lesson.check_claim("the second reward model orders round 1's own samples as the hidden human does more often "
                   "than the first, in every seed",
                   all(r["reward_model_accuracy_on_round1_samples"]["second"]["accuracy"]
                       > r["reward_model_accuracy_on_round1_samples"]["first"]["accuracy"] for r in runs))
lesson.check_claim("round 1 (no KL brake) writes broken sentences more often than SFT, in every seed",
                   all(stage(r, "ppo", "well_formed_rate") < stage(r, "sft", "well_formed_rate") for r in runs),
                   **{f"seed_{s}": stage(r, "ppo", "well_formed_rate") for s, r in iterated.items()})
lesson.check_claim("round 2's gold reward is above round 1's, in every seed",
                   all(stage(r, "ppo_iterated", "gold_reward") > stage(r, "ppo", "gold_reward") for r in runs))
lesson.check_claim("... and above SFT's, in every seed (by less than the 95% intervals)",
                   all(stage(r, "sft", "gold_reward") < stage(r, "ppo_iterated", "gold_reward")
                       < stage(r, "sft", "gold_ci")["high"] for r in runs))

# %% [markdown]
# **What to look for:** the reward model learns where it was wrong. Round 1, with no KL brake,
# found what the first reward model over-rates: its answers are broken sentences more often than
# SFT's (and in one seed its gold reward fell). After seeing round 1's own samples, labelled by the
# same annotator, the second reward model orders such answers better, and round 2 ends above
# round 1 and above SFT in gold in every seed (by less than the intervals): a reward model that
# has seen the policy's own samples steers PPO better than one that has not. The hole does not
# close everywhere: in
# one seed round 2 writes broken text even more often (the table), the next hole. That is why
# HH iterated every week, and why iteration and the KL penalty are used together.

# %% [markdown]
# ## Sycophancy and verbosity come from the labellers
#
# The hidden human never rewards agreeing with a wrong claim. Real labellers are not the hidden
# human: they like being agreed with, and they take longer answers for more effort. The simulated
# annotator has both habits as knobs (`prefers_agreement`: extra utility for saying yes to the
# user; `prefers_length`: extra utility per word). Train on their labels and the habit moves into
# the policy. Agreeing with a wrong claim costs 4 gold points against the honest correction, so
# `prefers_agreement` = 4 makes the labeller indifferent and 6 makes it prefer the sycophant.
# Each level is one plain DPO run (`PLAIN_DPO`: beta 0.1, no NLL term); only the labels change.
#
# *Under test (CI) the DPO runs are not trained here (about 1.5 min each); the three-seed numbers
# come from `benchmarks/bench_labeller_bias.py`. Run the notebook yourself and the next cell trains
# the most sycophantic labeller's DPO for your seed.*

# %%
if not UNDER_TEST:
    biased_dir = get_dpo_model_dir(profile, replace(PLAIN_DPO, annotator_agreement=6.0))  # trains if missing
    biased_policy, _ = load_adapter_policy(profile, biased_dir)
    plain_policy, _ = load_adapter_policy(profile, get_dpo_model_dir(profile, PLAIN_DPO))
    live = {name: evaluate_ppo_policy(model, tokenizer, world, prompts, reward_model_score, SAMPLES,
                                      seed=profile.seed)
            for name, model in (("DPO, unbiased labeller", plain_policy),
                                ("DPO, prefers_agreement 6", biased_policy))}
    display(lesson.number_table({name: {"agrees with a wrong claim": m["sycophancy_rate"],
                                        "contradicts a right claim": m["contrarian_rate"],
                                        "gold reward": m["gold"]["mean"]} for name, m in live.items()}))

# %%
bias = json.loads((Path("..") / "benchmarks" / "results" / "labeller_bias.json").read_text())
levels = list(next(iter(bias["runs"].values()))["dpo"])
fig = plots.labeller_bias(bias)
lesson.number_table({level: {f"seed {seed}: {what}": run["dpo"][level][key]
                             for seed, run in bias["runs"].items()
                             for what, key in (("sycophancy", "sycophancy_rate"), ("length", "mean_length_words"))}
                     for level in levels}, fmt="{:.2f}")

# %%
runs = list(bias["runs"].values())
agree = [lvl for lvl in levels if lvl.startswith("annotator_agreement=") and lvl != "annotator_agreement=0"]
lengthy = ["annotator_agreement=0"] + [lvl for lvl in levels if lvl.startswith("annotator_length=")]
lesson.check_claim("with a labeller who likes being agreed with, DPO agrees with wrong claims more often than "
                   "with the unbiased labeller, at every bias level and in every seed",
                   all(r["dpo"][lvl]["sycophancy_rate"] > r["dpo"]["annotator_agreement=0"]["sycophancy_rate"]
                       for r in runs for lvl in agree))
lesson.check_claim("... and contradicts right claims less often at the strongest bias",
                   all(r["dpo"][agree[-1]]["contrarian_rate"] < r["dpo"]["annotator_agreement=0"]["contrarian_rate"]
                       for r in runs))
lesson.check_claim("... and the gold reward falls at the strongest bias, for both habits, in every seed",
                   all(r["dpo"][lvl]["gold_reward"] < r["dpo"]["annotator_agreement=0"]["gold_reward"]
                       for r in runs for lvl in (agree[-1], lengthy[-1])))
lesson.check_claim("the mean length of DPO's answers grows with the labeller's taste for length, in every seed",
                   all(r["dpo"][a]["mean_length_words"] < r["dpo"][b]["mean_length_words"]
                       for r in runs for a, b in zip(lengthy, lengthy[1:])))

# %% [markdown]
# **What to look for:** the policy learns the labellers, not the hidden human. A labeller who
# likes being agreed with produces a policy that says yes more: fewer contradictions of right
# claims (that part is good), far more agreement with wrong ones (that part is sycophancy), and
# the gold reward falls. The same with length: every word the labeller likes is a word the policy
# learns to add, whatever it costs in gold. Nothing in the training data says "this is a bias":
# the only defence is to measure the labels (inter-annotator agreement, audits against a trusted
# judgement), which is what the hidden human lets us do here.

# %% [markdown]
# ## Your turn: predict, then run
#
# Before you run it, write down what you expect: with `kl_coef=1.0` (a strong brake), will the
# held-out KL be above or below 0.5 nats? Will the share of polite openers be above or below SFT's? Then set
# `KL_COEFS = (1.0,)` in the first cell, rerun the notebook, and compare with the table above.
# (About 1.5 min on the tiny profile.) The solutions of exercises 07 (diversity) and 08
# (best-of-n) use the same pieces: `rlhf_lab.diversity` and `rlhf_lab.evaluate.best_of_n_curve`.
