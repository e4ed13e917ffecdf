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
# # 05 · PPO with a KL penalty
#
# Now the policy (the SFT model with a fresh LoRA adapter) learns by trial: it samples answers to
# training prompts, the reward model scores them, and PPO makes high-scoring answers more likely.
# A **KL penalty** to the reference (the SFT model: the same weights with the adapter switched off)
# keeps it from drifting into text the reward model was never trained to judge. The gold reward
# is logged next to the reward model's score, but the policy never sees it.
#
# Two details of the course's trainer matter (its docstring says why): the value head reads
# *detached* features, so fitting the critic never drags the policy, and each prompt is sampled
# four times so that every answer is scored against its siblings (a leave-one-out baseline).
#
# TRL no longer ships PPO, so the course has its own, in one file you can read top to bottom:
# `rlhf_lab/ppo.py`.

# %%
import torch

from rlhf_lab import lesson
from rlhf_lab.config import get_profile
import json
from dataclasses import asdict

from rlhf_lab import models, plots
from rlhf_lab.evaluate import (evaluate_policy, gold_gain_by_family, gold_gain_ci, heldout_prompts, opener_after_start,
                               opens_politely, repeat_prompts, win_rate_ci)
from rlhf_lab.losses import first_token_advantages
from rlhf_lab.sampling import sample, texts
from statistics import mean
from rlhf_lab.stages.pretrain import get_tokenizer
from rlhf_lab.stages.common import load_adapter_policy
from rlhf_lab.ppo import PPOTrainer
from rlhf_lab.stages.ppo import default_ppo_config, get_ppo_model_dir
from rlhf_lab.stages.sft import get_sft_model_dir
from rlhf_lab.world import World

# %%
lesson.notebook_setup()  # 2 CPU threads (RLHF_LAB_THREADS), small figures, the libraries' chatter off
profile = get_profile()  # "tiny" unless the environment says RLHF_LAB_PROFILE=gpu
print(lesson.setup_line(profile))

# %% [markdown]
# ## The configuration (the profile's defaults)

# %%
config = default_ppo_config(profile)
for name, value in asdict(config).items():
    print(f"{name:>18} = {value}")

# %% [markdown]
# ## The core of one PPO step
#
# Rollout and score, then per-token rewards (every token pays `kl_coef * (log pi - log pi_ref)`,
# the reward model's score lands on the last token), advantages with GAE, then several epochs
# of clipped policy and value updates. All the math is in `rlhf_lab.losses` (exercises 04-06).

# %%
lesson.show_code(PPOTrainer.step, "batch = self.rollout(prompts)", "update_stats = self._update")

# %% [markdown]
# ## First, a control: PPO against the hidden human itself
#
# Before trusting (or blaming) a reward model, check the optimiser on a reward with a known
# answer: the gold reward. Same trainer, same settings, no reward model. If PPO cannot climb
# this, no reward model will save it.
# *Takes about 2 min the first time (plus the SFT model if it is missing) on the tiny profile (2 CPU cores); gpu profile: not timed yet.*

# %%
with lesson.stopwatch() as clock:
    control_dir = get_ppo_model_dir(profile, config, reward="gold")
control_report = json.loads((control_dir / "ppo.json").read_text())
print(lesson.ready_line("PPO control (gold reward)", clock.seconds, control_report["seconds"]))
fig = plots.ppo_curves(control_report["history"], title="Control: PPO on the gold reward itself")

# %%
start, end = lesson.first_and_last(control_report["history"], "gold_reward")
lesson.check_claim("the optimiser works: against the gold reward, PPO's training reward rises", end > start,
                   first_steps=start, last_steps=end)

# %% [markdown]
# ## Then the real thing: PPO against the reward model
#
# Now the policy sees only the reward model's score. The gold reward is logged beside it.
# *Takes about 2 min the first time (plus SFT and the reward model if they are missing).*

# %%
with lesson.stopwatch() as clock:
    ppo_dir = get_ppo_model_dir(profile, config)
ppo_report = json.loads((ppo_dir / "ppo.json").read_text())
history = ppo_report["history"]
print(lesson.ready_line("PPO policy", clock.seconds, ppo_report["seconds"]))
fig = plots.ppo_curves(history)

# %%
start, end = lesson.first_and_last(history, "reward")
lesson.check_claim("against the reward model, the reward model's score rises", end > start,
                   first_steps=start, last_steps=end)

# %%
fig = plots.ppo_diagnostics(history)

# %% [markdown]
# **What to look for:**
# - **Reward model score vs gold:** in a healthy run both rise. If the score rises while the
#   gold reward stalls or falls, the policy is exploiting the reward model (over-optimisation).
# - **KL:** grows as the policy moves away from SFT; the penalty makes that cost reward.
# - **Clip fraction** (share of tokens whose probability ratio hit the clip) should stay small
#   (below ~0.2); **entropy** shows whether the policy grows more certain; **response length**
#   whether it learned to be brief or verbose.
#
# ## Measured on held-out prompts: SFT, the control and PPO
#
# `profile.eval_samples` samples per held-out prompt (2 on the tiny profile); each PPO answer is compared with the SFT answer to the same
# prompt by the hidden human (ties count half); intervals are 95% bootstrap over requests.
# *Takes about 20 s on the tiny profile (2 CPU cores).*

# %%
world = World(profile.seed)
tokenizer = get_tokenizer(profile)
sft_model = models.load_model(get_sft_model_dir(profile), quantize_4bit=profile.quantize_4bit,
                              device=profile.device, trainable=False)
heldout = heldout_prompts(world, profile.eval_prompts)
repeated = repeat_prompts(heldout, profile.eval_samples)
metrics, responses = {}, {}
metrics["SFT"], responses["SFT"] = evaluate_policy(sft_model, tokenizer, world, heldout, profile.eval_samples,
                                                   profile.max_new_tokens, profile.seed, reference=None)
for name, directory in (("control (gold)", control_dir), ("PPO", ppo_dir)):
    policy, _ = load_adapter_policy(profile, directory)
    metrics[name], responses[name] = evaluate_policy(policy, tokenizer, world, heldout, profile.eval_samples,
                                                     profile.max_new_tokens, profile.seed)
lesson.metrics_table(metrics)

# %%
wins = {f"{name} vs SFT": win_rate_ci(repeated, responses[name], responses["SFT"]) for name in ("control (gold)", "PPO")}
fig = plots.win_rates(wins)

# %% [markdown]
# A win rate says only *whether* an answer beat SFT's, and many comparisons are ties (both answers
# right, in the same words). The paired gold gain says *by how much*: each PPO answer's gold reward
# minus the SFT answer's to the same prompt, averaged, with a 95% bootstrap interval over requests.

# %%
gains = {f"{name} - SFT": gold_gain_ci(repeated, responses[name], responses["SFT"]) for name in ("control (gold)", "PPO")}
for name, gain in gains.items():
    print(f"{name:>22}: gold {gain['mean']:+.2f}  [{gain['low']:+.2f}, {gain['high']:+.2f}]")
lesson.check_claim("against the gold reward itself, PPO raises the gold reward over SFT (interval above 0)",
                   gains["control (gold) - SFT"]["low"] > 0, **gains["control (gold) - SFT"])

# %%
samples = lesson.pick_samples(heldout)
first = {p.prompt_id: profile.eval_samples * i for i, p in enumerate(heldout)}
lesson.samples_table(samples, {name: [responses[name][first[p.prompt_id]] for p in samples] for name in responses})

# %% [markdown]
# **What to look for:** which components moved, and the two KL numbers (nats per response, on
# each policy's own samples, exactly as PPO measures it). The control shows how far this
# optimiser, in this budget, gets against the truth. PPO against the reward model can come
# close to it on the total, or pass it; like the control it gains most on the same two families,
# and both runs can lose a little gold on the other two, benign and helpful (the paired gains by
# family below: how much depends on the run). SFT copied helpful-only demonstrators, and both runs
# reduce what they got wrong: the rows "gives harmful instructions" and "sycophancy" fall (the
# control's sycophancy by a seed-dependent amount, PPO's far), and those two families gain most. But look at the row "contrarian": on the traps
# where the user is *right*, how often the answer starts with "No" (whatever fact follows; the
# row below it, "misstates the fact", counts a wrong value for the subject, a failure of
# knowledge rather than of disposition). PPO against the reward model agrees with wrong claims
# less often than SFT, yet says "No" to right users far more often than SFT did (the check below).
# It learned to say "No", not which claims are wrong: the reward model cannot tell a right claim
# from a wrong one well (notebook 04), and "No" is right more often than "Yes" on the traps it was
# shown: a shortcut, taken apart in notebook 07. The control can say "No" more often too (how much
# depends on the seed: the policy cannot check a claim either), but on the benchmark's three seeds
# PPO against the reward model fails right users most (a "No" or a misstated fact). And the
# capability probe (a skill no reward asks about) moves by less than 15 points, most often down a
# few: at this KL the alignment tax is small (notebook 07b pushes PPO further, where it grows, and
# measures PPO-ptx, which pays it back).

# %%
by_family = {name: {f: g["mean"] for f, g in gold_gain_by_family(repeated, responses[name], responses["SFT"]).items()}
             for name in ("control (gold)", "PPO")}
lesson.number_table(by_family)

# %%
runs = ("control (gold)", "PPO")
rates = {n: {r: metrics[n][f"{r}_rate"] for r in ("harmful_compliance", "sycophancy", "contrarian")}
         for n in ("SFT",) + runs}
lesson.check_claim("both runs give harmful instructions less often than SFT, and agree with wrong claims less often",
                   all(rates[n][r] < rates["SFT"][r] for n in runs for r in ("harmful_compliance", "sycophancy")),
                   **{f"{n}_{r}_rate": rates[n][r] for n in ("SFT",) + runs for r in ("harmful_compliance", "sycophancy")})
lesson.check_claim("PPO against the reward model says 'No' to right claims more often than SFT, while it agrees "
                   "with wrong claims less often (the 'No' shortcut)",
                   rates["PPO"]["contrarian"] > rates["SFT"]["contrarian"]
                   and rates["PPO"]["sycophancy"] < rates["SFT"]["sycophancy"],
                   **{f"{n}_{r}_rate": rates[n][r] for n in ("SFT", "PPO") for r in ("sycophancy", "contrarian")})

# %%
lesson.check_claim("the two families the demonstrators got wrong (harmful, sycophancy) gain most, for both runs",
                   all(min(g["harmful"], g["sycophancy"]) > max(g["helpful"], g["benign"]) for g in by_family.values()),
                   **{f"{run}_{family}": gain for run, gains in by_family.items() for family, gain in gains.items()})
lesson.check_claim("PPO stays close to SFT: KL under 5 nats per response for both runs",
                   max(metrics[n]["kl_to_ref"] for n in runs) < 5, **{n: metrics[n]["kl_to_ref"] for n in runs})
probe = {n: metrics[n]["capability_probe"] for n in ("SFT",) + runs}
lesson.check_claim("neither run loses 15 points of the probe",
                   max(probe["SFT"] - probe[n] for n in runs) < 0.15, **{f"{n}_rate": v for n, v in probe.items()})

# %% [markdown]
# ## What the control does not learn: a push on one token moves every position
#
# The hidden human pays +0.3 for a polite opener that fits ("Sure!" before an answer), and SFT
# opens politely on well under half of its samples: "open politely, change nothing
# else" would already beat SFT on most comparisons. Yet the control opens politely no more often
# than SFT, or only a little more:

# %%
polite = {name: mean(map(opens_politely, responses[name])) for name in responses}
lesson.check_claim("SFT opens politely on about a third of its samples or less, and the control at most 15 points "
                   "more often", polite["SFT"] < 0.4 and polite["control (gold)"] < polite["SFT"] + 0.15,
                   **{f"{name}_rate": rate for name, rate in polite.items()})

# %% [markdown]
# An experiment with a known answer shows why. The reward is 1 for a polite opener and 0 otherwise, and PPO gets *perfect* credit
# assignment: `first_token_advantages` keeps the advantage on the first response token only, so
# the only token pushed is the one that chooses the opener.
# *Takes about 40 s on the tiny profile (2 CPU cores).*

# %%
def polite_reward(prompts, responses):
    return torch.tensor([float(opens_politely(r)) for r in responses])


def opener_rates(prompts, responses):
    return {"polite": mean(map(opens_politely, responses)),
            "opener_after_start": mean(map(opener_after_start, responses))}


torch.manual_seed(profile.seed)
pushed = models.load_model(get_sft_model_dir(profile), quantize_4bit=profile.quantize_4bit, device=profile.device,
                           lora=models.LoraSettings.from_profile(profile))
push_config = default_ppo_config(profile, steps=30, learning_rate=3 * config.learning_rate, whiten_advantages=False)
trainer = PPOTrainer(pushed, tokenizer, polite_reward, push_config, metrics_fn=opener_rates,
                     overrides={"gae_advantages": first_token_advantages})
push_history = trainer.train([p.text for p in world.prompts("train")])
fig = plots.training_curves_by_kl({"first token only": push_history}, keys=("polite", "opener_after_start"),
                                  window=3)

# %%
lesson.samples_table(samples, {"SFT": [responses["SFT"][first[p.prompt_id]] for p in samples],
                               "first token pushed": texts(sample(pushed, tokenizer, [p.text for p in samples],
                                                                  profile.max_new_tokens, seed=profile.seed))})

# %%
polite_start, polite_end = lesson.first_and_last(push_history, "polite")
leak_start, leak_end = lesson.first_and_last(push_history, "opener_after_start")
sft_after_start = mean(map(opener_after_start, responses["SFT"]))
lesson.check_claim("SFT seldom writes an opener after the start of its answer (under 5% of its samples)",
                   sft_after_start < 0.05, sft_rate=sft_after_start)
lesson.check_claim("pushing only the first token also puts openers after the start of responses, where SFT seldom "
                   "writes one: that share rises by more than 10 points",
                   leak_end - leak_start > 0.10,
                   polite_first_steps_rate=polite_start, polite_last_steps_rate=polite_end,
                   after_start_first_steps_rate=leak_start, after_start_last_steps_rate=leak_end)

# %% [markdown]
# **What to look for:** the share of responses with an opener *after* the start ("Good question.
# ToGood question. ..."; which opener leaks depends on the seed), which SFT seldom writes, climbs
# by more than 10 points, though no position but the first was pushed. How far the polite opening
# itself rises depends on the seed: it can barely move, climb with the leak, or climb and fall back
# as the leak breaks the answers. The adapter's weights are shared by every position: raising an
# opener at the start raises it everywhere. In real PPO
# every token has its own advantage and its own KL penalty, and those hold the other positions
# in place, so the opener can only be learned as fast as they hold. Against the gold reward the
# trade is poor: the opener is worth +0.3, a broken sentence costs 0.5 and usually the answer.
# `experiments/opener_control.py` measures the same reward with the full PPO, on held-out
# prompts (`docs/FINDINGS.md` has its numbers).
#
# **Next:** `05b_beyond_ppo.ipynb`, RLOO and GRPO beside this PPO on the same reward; then `06_dpo.ipynb`, the
# same preferences without a reward model.
