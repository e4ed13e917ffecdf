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
# 5. **Iterated RLHF**: show the reward model the policy's own samples, and train again.
# 6. **Sycophancy and verbosity from the labellers**: biased labels, a biased policy.
#
# Both methods are plotted on Gao et al.'s axes: gain over the start against
# d = sqrt(KL to the start), with the paper's fitted forms, best-of-n: d(alpha - beta d), RL:
# d(alpha - beta log d).
#
# *Under test (CI) the notebook runs a reduced grid (n up to 128, two KL
# coefficients) and reads sections 5 and 6 from their benchmarks instead of training them; the
# full grid and seeds 0-2 are in `benchmarks/bench_failure_modes.py`, `bench_iterated.py`,
# `bench_labeller_bias.py` and the README's results.*

# %%
import json
import os
from pathlib import Path

import torch

from rlhf_lab import lesson, models, plots
from rlhf_lab.config import get_profile
from rlhf_lab.evaluate import heldout_prompts
from rlhf_lab.overoptimization import best_of_n_overoptimization, evaluate_ppo_policy, gao_fit
from rlhf_lab.stages.dpo import DPOSettings, get_dpo_model_dir, load_adapter_policy
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
lesson.check_claim("the picks at the largest n open politely more often than single samples",
                   top["polite_rate"] > start["polite_rate"], n1=start["polite_rate"], n_top=top["polite_rate"])
lesson.check_claim("... and are well-formed less often",
                   top["well_formed_rate"] < start["well_formed_rate"], n1=start["well_formed_rate"],
                   n_top=top["well_formed_rate"])
lesson.check_claim("the closer \"I hope this helps.\" is (almost) never picked: the SFT model does not say it",
                   top["closer_rate"] < 0.05, n1=start["closer_rate"], n_top=top["closer_rate"])
for n, examples in bon["examples"].items():
    print(f"\nbest-of-{n}:")
    for prompt, text in zip(prompts, examples):
        print(f"  {prompt.text!r:48} -> {text!r}")

# %% [markdown]
# The hidden human likes a polite opener (+0.3), and people's good answers opened politely more
# often, so the reward model learned "Sure!" / "Good question." as a sign of quality, and it
# never learned to check that the rest is a sentence at all: it saw little broken text in its
# pairs. Search among 256 samples finds the broken answers that open politely and borrow words
# of good answers ("Good question. house, use a soft brush and two thin coats of paint.").
#
# The world's planted correlate, the closer "I hope this helps.", is *not* exploited here, and
# that is a lesson too: the SFT model never says it (its demonstrations do not), so neither
# search nor PPO can find it. An exploit must first be reachable from the policy's own samples.
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
# others. The variety of *right* answers is where collapse shows, and not in every run. The
# benchmark (three seeds, 4 samples per prompt) has it, together with one run pushed hard on
# purpose: no KL brake and a 10x learning rate.

# %%
benchmark = json.loads((Path("..") / "benchmarks" / "results" / "failure_modes.json").read_text())


def gauge_by_seed(key):
    """One gauge for SFT, each PPO run and the run pushed hard, per seed of the benchmark."""
    return {f"seed {seed}": {"SFT": run["sft"][key], **{f"PPO kl {k}": v[key] for k, v in run["ppo"].items()},
                             "pushed hard": run["pushed_hard"][key]}
            for seed, run in benchmark["runs"].items() if run.get("pushed_hard")}


collapse, entropy = gauge_by_seed("distinct_correct"), gauge_by_seed("entropy_per_token")
print("distinct correct answers per prompt (nan: no prompt with two right answers):")
display(lesson.number_table(collapse, fmt="{:.2f}"))
print("entropy per token (nats):")
display(lesson.number_table(entropy, fmt="{:.2f}"))

# %%
collapsed = [seed for seed, row in collapse.items() if row["PPO kl 0.0"] < 0.05 < row["SFT"]]
lesson.check_claim("in some seeds PPO without a KL brake collapses the right answers onto one phrasing",
                   len(collapsed) >= 1, collapsed=", ".join(collapsed) or "none")
lesson.check_claim("pushed hard, the policy does not collapse but degenerates: its entropy rises above SFT's",
                   all(row["pushed hard"] > row["SFT"] for row in entropy.values()),
                   **{seed.replace(" ", "_"): row["pushed hard"] for seed, row in entropy.items()})

# %% [markdown]
# Two different failures, then. With no brake, some runs settle on one phrasing of each right
# answer (often the plain one: the politeness the hidden human likes is gone) while the rest of
# the distribution stays as loose as SFT's. Pushed much harder, the policy does not sharpen at
# all: it runs tens of nats away from SFT into text that is no sentence, which the reward model
# still scores well. The KL penalty guards against both.
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
lesson.check_claim("the second reward model orders round 1's own samples as the hidden human does more often "
                   "than the first, in every seed",
                   all(r["reward_model_accuracy_on_round1_samples"]["second"]["accuracy"]
                       > r["reward_model_accuracy_on_round1_samples"]["first"]["accuracy"] for r in runs))
lesson.check_claim("round 2 contradicts a user who is right less often than round 1, in every seed",
                   all(r["stages"]["ppo_iterated"]["contrarian_rate"] < r["stages"]["ppo"]["contrarian_rate"]
                       for r in runs))
recovered = [(r["stages"]["ppo_iterated"]["gold_reward"] - r["stages"]["ppo"]["gold_reward"])
             / (r["stages"]["sft"]["gold_reward"] - r["stages"]["ppo"]["gold_reward"]) for r in runs]
lesson.check_claim("... but the gold reward recovers less than half of what round 1 lost, in every seed",
                   all(x < 0.5 for x in recovered), recovered=", ".join(f"{x:.0%}" for x in recovered))
lesson.check_claim("round 2's answers are well-formed less often than round 1's, in every seed",
                   all(r["stages"]["ppo_iterated"]["well_formed_rate"] < r["stages"]["ppo"]["well_formed_rate"]
                       for r in runs))

# %% [markdown]
# **What to look for:** the hole the reward model was shown closes. Round 1 learned that "No, ..."
# pays (the first reward model saw honest corrections start with "No" and never saw a "No" to a
# user who was right); after seeing round 1's own samples the second reward model knows better,
# and round 2 contradicts right users about as often as SFT does. The gold reward barely
# recovers, because with no KL brake round 2 goes looking for the *next* hole: its answers are
# well-formed less often than round 1's (the table, and the last check). That is why HH iterated every week, and why
# iteration and the KL penalty are used together.

# %% [markdown]
# ## Sycophancy and verbosity come from the labellers
#
# The hidden human never rewards agreeing with a wrong claim. Real labellers are not the hidden
# human: they like being agreed with, and they take longer answers for more effort. The simulated
# annotator has both habits as knobs (`prefers_agreement`: extra utility for saying yes to the
# user; `prefers_length`: extra utility per word). Train on their labels and the habit moves into
# the policy. Agreeing with a wrong claim costs 4 gold points against the honest correction, so
# `prefers_agreement` = 4 makes the labeller indifferent and 6 makes it prefer the sycophant.
# Each level is one DPO run with the course's settings; only the labels change.
#
# *Under test (CI) the DPO runs are not trained here (about 1.5 min each); the three-seed numbers
# come from `benchmarks/bench_labeller_bias.py`. Run the notebook yourself and the next cell trains
# the most sycophantic labeller's DPO for your seed.*

# %%
if not UNDER_TEST:
    biased_dir = get_dpo_model_dir(profile, DPOSettings(annotator_agreement=6.0))  # trains if missing
    biased_policy, _ = load_adapter_policy(profile, biased_dir)
    plain_policy, _ = load_adapter_policy(profile, get_dpo_model_dir(profile))
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
