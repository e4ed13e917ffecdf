# ---
# jupyter:
#   jupytext:
#     formats: ipynb,sources//py:percent
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
# # 07b · When RLHF goes wrong (2): over-optimisation, collapse, the alignment tax
#
# Notebook 07 made reward hacks on purpose and fixed them. This one pushes the optimiser against
# the course's own reward model (both guards) and measures what the push costs:
#
# 1. **Over-optimisation** (Goodhart's law): best-of-n and PPO against the reward model on Gao,
#    Schulman & Hilton's (2022) axes.
# 2. **Mode collapse**, measured with gauges that broken text cannot fool.
# 3. **Capability regression** and **PPO-ptx**, which keeps the skill.
# 4. **PPO, DPO and best-of-n on one frontier**: the gold each reaches for the KL it spends.
#
# Each numbered claim is checked on the three-seed benchmark (`benchmarks/bench_failure_modes.py`),
# and your own run is drawn next to it. The benchmark's seeds are separate training runs, with the
# code and the evaluation of their date (the same 48 held-out prompts, but intervals resampled over
# prompts, not requests): its seed 0 is not your run, and its numbers differ from yours by at least
# as much as one draw differs from another.
#
# *On the test budget (`RLHF_LAB_BUDGET=test`: what the tests run) the notebook trains only section
# 1's reduced grid (best-of-n to n=128, PPO at two KL coefficients) and reads everything else from
# the benchmark; run it yourself and it trains every run for your seed
# (about 8 min from nothing on 2 CPU cores after notebooks 02-05, several more if they have not
# run; about a minute once cached).*

# %%
import json

from rlhf_lab import lesson, plots
from rlhf_lab.config import get_profile, under_test_budget
from rlhf_lab.evaluate import heldout_prompts
from rlhf_lab.overoptimization import (best_of_n_overoptimization, evaluate_with_proxy, gains_over_start,
                                       past_the_peak, ppo_by_kl, rl_fit)
from rlhf_lab.stages.common import load_adapter_policy
from rlhf_lab.stages.ppo import default_ppo_config, get_ppo_model_dir

# %%
lesson.notebook_setup(dpi=48)  # small figures (this notebook has many), the libraries' chatter off
profile = get_profile()  # "tiny" unless the environment says RLHF_LAB_PROFILE=gpu
print(lesson.setup_line(profile))
UNDER_TEST = under_test_budget()  # RLHF_LAB_BUDGET=test: the reduced grid (tests, a quick look)
LIVE = not UNDER_TEST  # train every run for your seed (under test: read the benchmarks)
NS = (1, 2, 4, 8, 16, 32, 64, 128) if UNDER_TEST else (1, 2, 4, 8, 16, 32, 64, 128, 256)
KL_COEFS = (0.0, 0.05) if UNDER_TEST else (0.0, 0.02, 0.05, 0.5)  # 0.05: notebook 05's run, cached
N_PROMPTS = 48  # held-out prompts for the over-optimisation grid
SAMPLES = 4  # sampled answers per prompt when a policy is judged
BENCH = {"failure_modes": lesson.benchmark("failure_modes")}  # the three-seed benchmark
print(f"your run: seed {profile.seed}; benchmark: seeds {BENCH['failure_modes']['seeds']}")

# %% [markdown]
# ## The models: SFT, and the reward model of notebook 04
#
# *Takes a few seconds when notebooks 02 and 04 ran before (about 5 min from nothing) on the tiny profile (2 CPU cores).*

# %%
course = lesson.course_models(profile)  # each built first if the cache lacks it
world, tokenizer, sft, reward_model = course.world, course.tokenizer, course.sft, course.reward_model
reward_model_score = course.reward_model_score  # score_fn(user_texts, responses) for PPO and the judges

# %% [markdown]
# ## 1. Over-optimisation: Goodhart's law, measured
#
# Gao, Schulman & Hilton (2022) measured it on real models: as a policy moves away from its start
# (KL), the reward model's score keeps rising while the true ("gold") reward rises less, peaks and
# falls. Both methods here are plotted on their axes, gain over the start against d = sqrt(KL to the
# start), with the paper's fitted forms: best-of-n d(alpha - beta d), RL d(alpha - beta log d).
# The course's own reward model (both guards) is the proxy from here on.
#
# ### Best-of-n: search against the proxy
#
# Sample n answers per prompt from the SFT model and keep the one the reward model scores
# highest. No weights change, yet the picked answers are a new policy, at KL at most
# log n - (n-1)/n nats from SFT.
#
# *Takes about 25 s for n up to 256 (less on the test budget, n up to 128), on the tiny profile (2 CPU cores).*

# %%
prompts = heldout_prompts(world, N_PROMPTS)  # every family, interleaved
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

# %%
benchmark = BENCH["failure_modes"]  # seeds 0-2, n up to 256, PPO at four KL coefficients
bon_bench = {f"seed_{seed}": past_the_peak(run["best_of_n"]["rows"]) for seed, run in benchmark["runs"].items()}
lesson.check_claim("in every seed of the benchmark (n up to 256), the pick at the largest n has the reward model's "
                   "highest score and a gold reward below the peak by more than its 95% interval",
                   all(fell and highest for fell, highest in bon_bench.values()),
                   **{seed: f"{fell}/{highest}" for seed, (fell, highest) in bon_bench.items()})

# %% [markdown]
# **What to look for:** the blue points (what the search optimises) climb all the way; the green
# ones (what the hidden human thinks of the same picks) do not follow: the more answers the
# reward model chooses from, the more its choice lands on what it *over-rates*. The green bars are
# 95% intervals over requests; the benchmark's three seeds (last check) put the largest n's gold
# below the peak by more than its interval.
#
# ### The exploit: what does the reward model pick?

# %%
for r in rows:
    print(f"n={r['n']:>3}: opens politely {r['polite_rate']:4.0%}, well-formed {r['well_formed_rate']:4.0%}, "
          f"says the closer {r['closer_rate']:4.0%}")
lesson.check_claim("the picks at the largest n are well-formed less often than single samples",
                   top["well_formed_rate"] < start["well_formed_rate"], n1_rate=start["well_formed_rate"],
                   n_top_rate=top["well_formed_rate"])
lesson.check_claim("the closer \"I hope this helps.\" is (almost) never picked: the SFT model does not say it",
                   top["closer_rate"] < 0.05, n1_rate=start["closer_rate"], n_top_rate=top["closer_rate"])
for n, examples in bon["examples"].items():
    print(f"\nbest-of-{n}:")
    for prompt, text in zip(prompts, examples):
        print(f"  {prompt.text!r:48} -> {text!r}")

# %% [markdown]
# The picks at large n are what the reward model over-rates; in the lines above, look for
# broken sentences that borrow words of good answers and fluent answers to *another* question
# (about another object than the one asked), and openers glued into the middle of a sentence. The reward model saw broken text in
# its pairs (the course's guard), yet among 256 samples some broken ones still score higher than
# every good one: a guard lowers the error, it does not remove it. And two answers that differ only
# in the subject are close to a coin toss for it (notebook 04). Polite openers do not take over
# (the lines above): the hidden human likes them, but they are not what this search finds.
#
# The world's planted correlate, the closer "I hope this helps.", is *not* exploited here, and
# that is a lesson too: the SFT model almost never says it (its demonstrations do not; at most one
# answer in 200 in the benchmark's seeds), so neither search nor PPO finds it often enough to
# exploit it. An exploit must first be reachable from the policy's own samples.
# (Two runs below do reach it: PPO-ptx, whose pretraining text contains it, and DPO with a small
# beta, which learns from the labelled pairs directly, not from its own samples.)
#
# ### PPO at several KL coefficients
#
# The KL penalty is RLHF's brake: every token pays `kl_coef * (log pi - log pi_ref)`. Each
# coefficient is one PPO run of notebook 05's settings (cached by its settings, so a rerun is
# instant; kl_coef 0.05 *is* notebook 05's run). The training log keeps, next to the reward
# model's score the policy sees, the gold reward it never sees.
#
# *Takes about 1.5 min per coefficient the first time on the tiny profile (2 CPU cores).*

# %%
sft_eval, ppo_runs = ppo_by_kl(profile, KL_COEFS, sft, tokenizer, world, prompts, reward_model_score, SAMPLES,
                               seed=profile.seed)  # trains the runs that are missing, then judges them
fig = plots.training_curves_by_kl({k: r["history"] for k, r in ppo_runs.items()}, keys=("reward", "gold_reward", "kl"))

# %% [markdown]
# **What to look for:** the reward model's score (left) climbs in every run, least with the
# strongest brake (0.5); the gold reward (the policy never sees it) climbs at first, then flattens
# while the score keeps rising (on held-out prompts, below, the proxy gains more than the gold);
# the strongest brake (0.5) keeps the KL far lower (right); between 0, 0.02 and 0.05 the curves
# differ little, and their order can swap from seed to seed.
#
# ### Held-out: the same runs judged by the hidden human

# %%
held_out = {"SFT": sft_eval, **{f"PPO kl_coef {kl_coef}": run for kl_coef, run in ppo_runs.items()}}
lesson.number_table({name: {"gold reward": m["gold"]["mean"], "reward model": m["proxy"], "KL to SFT": m["kl"],
                             "opens politely": m["polite_rate"], "well-formed": m["well_formed"],
                             "capability probe": m["capability_probe"]} for name, m in held_out.items()},
                    rates=("opens politely", "well-formed", "capability probe"))

# %%
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
# ### PPO on the same axes: gain against d = sqrt(KL)
#
# PPO's held-out points (one per KL coefficient), on the axes of the best-of-n figure above, with
# Gao et al.'s RL form fitted to them.


# %%
ppo_plot = gains_over_start(sft_eval, list(ppo_runs.values()))
ppo_fit = rl_fit(ppo_plot)
for name, fit in (ppo_fit or {}).items():
    print(f"PPO {name:>5}: alpha {fit['alpha']:+.3f}, beta {fit['beta']:+.3f}")
fig = plots.overoptimization(ppo_plot, ppo_fit, "rl", "PPO against the reward model, one point per kl_coef")

# %% [markdown]
# **What to look for:** in both methods the distance between the blue and the green points is
# the reward model's error, and it grows with KL (then may level off). PPO at the course's learning
# rate often does not get far: in two seeds of the benchmark, even with no brake, 60 rollouts take it
# less than 2 nats from SFT, where its gold has not yet fallen below its peak by more than the interval. In the third it moves more than 3 nats, and there
# its gold at the largest KL falls below the peak by more than the interval while the reward
# model's score is highest (next cell). PPO over-optimises whenever it moves far: against the
# unguarded reward model of notebook 07, and pushed with a 10x learning rate (section 2).

# %%
ppo_bench = {f"seed_{seed}": past_the_peak(sorted(run["ppo"].values(), key=lambda m: m["kl"]),
                                           gold=lambda m: m["gold"]["mean"], high=lambda m: m["gold"]["high"],
                                           proxy=lambda m: m["proxy"]) for seed, run in benchmark["runs"].items()}
largest_kl = {f"seed_{seed}": max(m["kl"] for m in run["ppo"].values()) for seed, run in benchmark["runs"].items()}
lesson.check_claim("at the course's learning rate, PPO's gold at its largest KL falls below its peak by more than the "
                   "95% interval, with the reward model's score highest there, in exactly the seeds where it moves "
                   "more than 3 nats", all((fell and highest) == (largest_kl[seed] > 3)
                                           for seed, (fell, highest) in ppo_bench.items()),
                   **{seed: f"KL {largest_kl[seed]:.1f}, past the peak: {fell and highest}"
                      for seed, (fell, highest) in ppo_bench.items()})
# %% [markdown]
# ## 2. Mode collapse? Measured, not assumed
#
# RL is often said to collapse a policy onto one way of answering. Most of the narrowing happens
# before RL: SFT already cut the base model's entropy per token (by about a third in notebook 02) and left few
# distinct right answers per prompt (notebook 02, "What SFT costs"). What is left for RL to
# collapse is small. distinct-n (exercise 07) cannot tell broken text from variety.
# Two sharper gauges, on the same held-out samples:
#
# - **entropy per token**: how many choices the policy leaves open at each step (0: one choice);
# - **distinct correct answers per prompt**: among the answers the hidden human counts right,
#   how many differ, `(distinct - 1) / (n - 1)` averaged over prompts (0: every right answer is
#   the same string, e.g. never polite any more; 1: no two alike).

# %%
lesson.number_table({name: {"entropy per token": m["entropy_per_token"],
                            "distinct correct answers": m["distinct_correct"]} for name, m in held_out.items()},
                    fmt="{:.2f}")

# %%
lowest_entropy = min(m["entropy_per_token"] for name, m in held_out.items() if name != "SFT")
lesson.check_claim("no PPO run here collapses the whole distribution: entropy per token stays above half of SFT's",
                   lowest_entropy > 0.5 * sft_eval["entropy_per_token"], sft=sft_eval["entropy_per_token"],
                   lowest_ppo=lowest_entropy)

# %% [markdown]
# **What to look for:** no run's entropy falls far (the check holds it above half of SFT's); 60
# PPO steps sharpen some tokens and loosen others: in some runs the entropy rises a little, in
# others it falls a little. The variety of *right* answers, where collapse would show first, moves
# by a few hundredths (with 4 samples per prompt it is a noisy gauge: few prompts have two right
# answers, and one run can read 0). The benchmark (three seeds) has the same, except where PPO moved furthest (the seed
# of section 1's check): there its entropy doubled, a policy wandering, not collapsing. It also
# has one run pushed hard on purpose: no KL brake and a 10x learning rate.

# %%

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
sharpest = min(value / row["SFT"] for row in entropy.values() for name, value in row.items() if name.startswith("PPO"))
lesson.check_claim("at the usual learning rate no PPO run collapses: its entropy per token stays above 70% of SFT's, "
                   "at every KL coefficient and seed", sharpest > 0.7, lowest_entropy_share=sharpest)
well_formed = {seed: run["pushed_hard"]["well_formed"] for seed, run in benchmark["runs"].items() if run.get("pushed_hard")}
lesson.check_claim("pushed hard, the policy leaves sentences behind: fewer than half of its answers are "
                   "well-formed, in every seed", max(well_formed.values()) < 0.5,
                   **{f"seed_{seed}_rate": v for seed, v in well_formed.items()})
lesson.check_claim("... and it does not collapse either: its entropy per token is above SFT's, in every seed",
                   all(row["pushed hard"] > row["SFT"] for row in entropy.values()),
                   **{seed.replace(" ", "_"): row["pushed hard"] / row["SFT"] for seed, row in entropy.items()})
for seed, run in benchmark["runs"].items():
    print(f"seed {seed}, pushed hard: {run['pushed_hard']['examples'][:2]}")

# %% [markdown]
# No collapse at the usual learning rate, then, in any seed. Pushed much harder, the policy runs
# tens of nats away from SFT into text that is mostly not a well-formed answer (stuttered openers
# glued to pieces of instructions, doubled words, or one wrong sum repeated, by seed), which the
# reward model still scores well, and it wanders rather than collapses:
# its entropy is at or above SFT's. Collapse onto one *good* answer, as reported for large models,
# needs a reward model that reliably likes that answer; this one likes broken text first. The KL
# penalty guards against both.

# %% [markdown]
# ## 3. Capability regression, and PPO-ptx
#
# RL improves what the reward model asks about and nothing else; a skill pretraining taught and
# no reward mentions can erode on the way. InstructGPT (Ouyang et al. 2022) saw its public-NLP
# scores fall after RLHF (the "alignment tax") and fixed most of it with **PPO-ptx**: mix the
# pretraining loss into every PPO update,
# `loss = PPO loss + ptx_coef * (next-token loss on pretraining text)` (`PPOSettings.ptx_coef`; the
# tiny profile feeds it the base model's own corpus). The skill measured here is the
# **capability probe**: 102 counting sequences to continue ("Count : zero one" -> "two three"),
# learned in pretraining and never asked about again.
#
# The run pushed hard above (no KL brake, 10x learning rate), once more with `ptx_coef=1`.
#
# *On the test budget these two runs are not trained here (about 5 min); the three-seed numbers
# below come from `benchmarks/bench_failure_modes.py`. Run the notebook yourself and the next
# cell trains both for your seed.*

# %%
if LIVE:
    ptx_runs, ptx_histories = {"SFT": sft_eval}, {}
    for label, ptx_coef in (("pushed hard", 0.0), ("pushed hard + ptx", 1.0)):
        config = default_ppo_config(profile, kl_coef=0.0, learning_rate=1e-3, ptx_coef=ptx_coef)
        directory = get_ppo_model_dir(profile, config)  # trains if missing
        policy, _ = load_adapter_policy(profile, directory)
        ptx_runs[label] = evaluate_with_proxy(policy, tokenizer, world, prompts, reward_model_score, SAMPLES,
                                              seed=profile.seed)
        ptx_histories[label] = json.loads((directory / "ppo.json").read_text())["history"]
    display(lesson.number_table({name: {"capability probe": m["capability_probe"], "gold reward": m["gold"]["mean"],
                                        "reward model score": m["proxy"], "well-formed": m["well_formed"],
                                        "says the closer": m["closer_rate"], "KL to SFT": m["kl"]}
                                 for name, m in ptx_runs.items()},
                                rates=("capability probe", "well-formed", "says the closer")))
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
                   "most 6), at every KL coefficient, in every seed of the benchmark", max(braked) <= 6,
                   largest_change_in_items=max(braked))
lesson.check_claim("pushed hard, PPO loses at least 10 points of the probe, in every seed",
                   min(lost.values()) >= 0.10, **{f"{s.replace(' ', '_')}_points": v for s, v in lost.items()})

# %%
lesson.check_claim("PPO-ptx wins back about half or more of what was lost (at least 40%), in every seed",
                   min(won_back.values()) >= 0.4, **{f"{s.replace(' ', '_')}_share": v for s, v in won_back.items()})
lesson.check_claim("... and its gold reward is higher than the pushed run's, in every seed",
                   all(rows["pushed hard + ptx"]["gold reward"] > rows["pushed hard"]["gold reward"]
                       for rows in regression.values()),
                   **{s.replace(" ", "_"): f"{rows['pushed hard']['gold reward']:+.2f} -> {rows['pushed hard + ptx']['gold reward']:+.2f}"
                      for s, rows in regression.items()})
closer = {seed: (run["sft"]["closer_rate"], run["pushed_hard_ptx"]["closer_rate"])
          for seed, run in benchmark["runs"].items() if run.get("pushed_hard_ptx")}
lesson.check_claim("with ptx, the policy ends with the planted closer \"I hope this helps.\" in over a third of "
                   "its answers (SFT: under 5%), in every seed: the pretraining chats made the exploit reachable",
                   all(ptx > 1 / 3 and sft < 0.05 for sft, ptx in closer.values()),
                   **{f"seed_{seed}_rate": ptx for seed, (sft, ptx) in closer.items()})
for seed, run in benchmark["runs"].items():
    print(f"seed {seed}, pushed hard + ptx: {run['pushed_hard_ptx']['examples'][:2]}")

# %% [markdown]
# **What to look for:** ordinary PPO costs the skill no reward mentions a few points (the check
# above bounds the benchmark's), and pushing PPO far from SFT costs far more; the pretraining term holds about half of it or more in place, and it
# also holds the text together, so the gold reward is far better than the pushed run's (and the
# reward model's score far lower: ptx keeps the policy away from the broken text that fooled it).
# The price: the pretraining corpus is the lab world's internet, with its rude and sycophantic
# chats, and ptx pulls the policy back toward them. It also teaches the policy the internet's
# closer, "I hope this helps.", which SFT almost never says and the reward model over-rates: with no KL
# brake, PPO then drives it into a third or more of the answers (a reward hack made reachable; the
# training curves above show its rate climb within the first steps, then hold). InstructGPT chose its ptx weight by
# such trade-offs, and so can you: `ptx_coef` is one setting.

# %% [markdown]
# ## 4. PPO, DPO and best-of-n on one frontier
#
# The DPO paper (Rafailov et al. 2023, Fig. 2) compares methods by the reward they reach for the
# KL they spend. Here the same in miniature, from the three-seed benchmark
# (`benchmarks/bench_failure_modes.py`: PPO at four KL coefficients, plain DPO (`PLAIN_DPO`, no NLL
# term) at three betas, best-of-n from 1 to 256): the gold reward of each policy against its KL to SFT, on the same held-out prompts.

# %%
fig = plots.frontier(benchmark["runs"])
betas = list(next(iter(benchmark["runs"].values())).get("dpo", {}))
lesson.number_table({f"DPO beta {beta}": {f"seed {seed}: {what}": run["dpo"][beta][key] if key != "gold" else
                                          run["dpo"][beta]["gold"]["mean"]
                                          for seed, run in benchmark["runs"].items()
                                          for what, key in (("KL", "kl"), ("gold", "gold"), ("well-formed", "well_formed"))}
                     for beta in betas}, rates=[f"seed {seed}: well-formed" for seed in benchmark["runs"]])

# %%
def frontier_points(run):
    """(method, setting, KL, gold, gold's lower 95% bound) of every policy in one seed."""
    return ([("best-of-n", f"n={r['n']}", r["kl"], r["gold"], r["gold_low"]) for r in run["best_of_n"]["rows"][1:]]
            + [("PPO", f"kl_coef {k}", m["kl"], m["gold"]["mean"], m["gold"]["low"]) for k, m in run["ppo"].items()]
            + [("DPO", f"beta {b}", m["kl"], m["gold"]["mean"], m["gold"]["low"]) for b, m in run["dpo"].items()])


seeds_with_dpo = {seed: run for seed, run in benchmark["runs"].items() if run.get("dpo")}
best = {seed: {method: max(p[3] for p in frontier_points(run) if p[0] == method) for method in ("PPO", "DPO")}
        for seed, run in seeds_with_dpo.items()}
lesson.check_claim("PPO's best gold over the brakes tried is above SFT's, in every seed",
                   all(b["PPO"] > seeds_with_dpo[seed]["sft"]["gold"]["mean"] for seed, b in best.items()),
                   **{f"seed_{seed}": b["PPO"] - seeds_with_dpo[seed]["sft"]["gold"]["mean"] for seed, b in best.items()})

# %%
smallest_beta = {seed: run["dpo"][min(run["dpo"], key=float)] for seed, run in seeds_with_dpo.items()}
lesson.check_claim("DPO with the smallest beta moves further from SFT than any point of PPO or best-of-n on the "
                   "frontier (over 5 nats) "
                   "and ends below SFT's gold reward, in every seed",
                   all(m["kl"] > max(5.0, *(p[2] for p in frontier_points(seeds_with_dpo[seed]) if p[0] != "DPO"))
                       and m["gold"]["mean"] < seeds_with_dpo[seed]["sft"]["gold"]["mean"]
                       for seed, m in smallest_beta.items()),
                   **{f"seed_{seed}_kl": m["kl"] for seed, m in smallest_beta.items()})
lesson.check_claim("DPO with the smallest beta says the planted closer \"I hope this helps.\" in over a quarter of its "
                   "answers (SFT: under 5%), in every seed",
                   all(m["closer_rate"] > 0.25 and seeds_with_dpo[seed]["sft"]["closer_rate"] < 0.05
                       for seed, m in smallest_beta.items()),
                   **{f"seed_{seed}_rate": m["closer_rate"] for seed, m in smallest_beta.items()})
print("DPO, smallest beta:", smallest_beta[next(iter(smallest_beta))]["examples"][:3])
lesson.check_claim("a larger beta keeps DPO closer to SFT: its KL falls as beta rises, in every seed",
                   all(all(run["dpo"][a]["kl"] > run["dpo"][b]["kl"] for a, b in zip(sorted(run["dpo"], key=float),
                                                                                 sorted(run["dpo"], key=float)[1:]))
                       for run in seeds_with_dpo.values()),
                   **{f"seed_{seed}_kl_by_beta": " > ".join(f"{run['dpo'][b]['kl']:.2f}" for b in sorted(run["dpo"], key=float))
                      for seed, run in seeds_with_dpo.items()})

# %% [markdown]
# **What to look for:** PPO's best point sits above SFT's dotted line in every seed: in the
# helpful-only world the preferences have something to teach. Further out its gold dips, a little
# (within the interval) or clearly, by seed. best-of-n gains at small n in some seeds and not in
# others (your own run's section 1 may not gain at all), then falls past its peak; DPO stays near SFT at a large beta and, with
# a small beta, runs far away into broken text (its well-formed rate in the table) ending in the
# planted closer. DPO never samples during training: it learns from the labelled pairs
# themselves, where good answers often end with "I hope this helps.", so the spurious feature
# reaches it directly, while PPO must first sample it. Read a method's result with its KL beside
# it: a gain that costs 10 nats is not the same gain as one that costs 1.

# %% [markdown]
# **Next:** `08_real_model.ipynb`: the same pipeline on a real model, in 4-bit with LoRA.
