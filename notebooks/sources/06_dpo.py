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
# # 06 · DPO, and PPO vs DPO
#
# **Direct Preference Optimisation** (Rafailov et al. 2023) skips the reward model and the RL loop.
# The KL-regularised RL objective has a closed-form optimum, pi ∝ pi_ref · exp(r / beta), so a
# reward can be written in terms of the policy itself, r = beta · log(pi / pi_ref) + const. Put
# that into the Bradley-Terry loss and you train the policy directly on the preference pairs:
#
# loss = -log sigmoid(beta · [log(pi/pi_ref)(chosen) - log(pi/pi_ref)(rejected)])
#
# Same comparison data as the reward model (templated pairs and pairs of the SFT model's own
# samples, labelled by the simulated annotator), same SFT start, LoRA adapter; the reference is
# the SFT model with the adapter switched off.
#
# **One addition: the chosen answer's likelihood (RPO).** The loss above only asks for a *margin*
# between chosen and rejected, and the cheapest margin lowers both answers, the rejected one
# faster: probability leaks to text neither answer contains. On this world's tiny model that leak
# is broken sentences (plain DPO at beta 0.1: 63-77% of answers well-formed against SFT's 91-96% on
# the 48 prompts of `benchmarks/bench_failure_modes.py`, seeds 0-2, an older evaluation; the DPO rates
# are in the last table of notebook 07b).
# The course's DPO therefore adds the chosen answer's negative log-likelihood (Pang et al. 2024,
# "RPO"; TRL: `loss_type=["sigmoid", "sft"]`), weighted by `sft_weight` = 1, with beta = 0.3. Both
# were picked by a small sweep (`experiments/sweeps.py dpo`, results in
# `experiments/results/sweeps.json`); `PLAIN_DPO` in `rlhf_lab/stages/dpo.py` is the loss above alone.

# %%
from rlhf_lab import lesson
from rlhf_lab.config import get_profile
import json

from rlhf_lab import models, plots
from rlhf_lab.evaluate import (behaviour_ci, best_of_n_curve, evaluate_policy, heldout_prompts, repeat_prompts,
                               win_rate_ci)
from rlhf_lab.scoring import scorer
from rlhf_lab.stages.reward import load_reward_model
from rlhf_lab.stages.pretrain import get_tokenizer
from rlhf_lab.stages.dpo import get_dpo_model_dir, loss_arguments, train_dpo
from rlhf_lab.stages.common import load_adapter_policy
from rlhf_lab.stages.ppo import get_ppo_model_dir
from rlhf_lab.stages.sft import get_sft_model_dir
from rlhf_lab.world import World

# %%
lesson.notebook_setup()  # 2 CPU threads (RLHF_LAB_THREADS), small figures, the libraries' chatter off
profile = get_profile()  # "tiny" unless the environment says RLHF_LAB_PROFILE=gpu
print(lesson.setup_line(profile))

# %% [markdown]
# ## The lines that matter: TRL's `DPOConfig` (from `rlhf_lab/stages/dpo.py`)

# %%
display(lesson.show_code(train_dpo, "config = DPOConfig(", "schedule_arguments"))
lesson.show_code(loss_arguments, "def loss_arguments")

# %% [markdown]
# ## Train (or load from the cache)
#
# *Takes about 1 min the first time (plus the SFT model if it is missing) on the tiny profile (2 CPU cores); gpu profile: not timed yet.*

# %%
with lesson.stopwatch() as clock:
    dpo_dir = get_dpo_model_dir(profile)
dpo_report = json.loads((dpo_dir / "dpo.json").read_text())
print(lesson.ready_line("DPO policy", clock.seconds, dpo_report["seconds"]))
fig = plots.dpo_curves(dpo_report["history"])

# %% [markdown]
# **What to look for:** the loss starts at log 2 = 0.69 (policy = reference, no preference yet)
# plus the chosen answers' NLL, and falls; the *implicit reward* beta·log(pi/pi_ref) of chosen
# responses rises, above that of rejected ones (the margin grows). Without the NLL term both often
# fall: plain DPO lowers the rejected response's probability faster than it raises the chosen one's.

# %%
first, last = dpo_report["history"][:10], dpo_report["history"][-10:]  # 10 logging steps each: one is noisy
mean_of = lambda steps, key: sum(h[key] for h in steps) / len(steps)  # noqa: E731
lesson.check_claim("the loss falls (its mean over the first 10 logging steps against the last 10)",
                   mean_of(last, "loss") < mean_of(first, "loss"),
                   first_10=mean_of(first, "loss"), last_10=mean_of(last, "loss"))
lesson.check_claim("the chosen answers' implicit reward rises, above the rejected answers' (the margin grows)",
                   mean_of(last, "rewards/chosen") > 0
                   and mean_of(last, "rewards/margins") > mean_of(first, "rewards/margins"),
                   chosen=mean_of(last, "rewards/chosen"), rejected=mean_of(last, "rewards/rejected"),
                   margin_first_10=mean_of(first, "rewards/margins"), margin_last_10=mean_of(last, "rewards/margins"))

# %% [markdown]
# ## PPO vs DPO, side by side
#
# PPO comes from notebook 05 (trained here first if it is missing: then this cell takes longer).
# *Takes about 30 s with PPO cached (about 2 min more without) on the tiny profile (2 CPU cores); gpu profile: not timed yet.*

# %%
with lesson.stopwatch() as clock:
    ppo_dir = get_ppo_model_dir(profile)
print(lesson.ready_line("PPO policy", clock.seconds, json.loads((ppo_dir / "ppo.json").read_text())["seconds"]))
world = World(profile.seed)
tokenizer = get_tokenizer(profile)
sft_model = models.load_model(get_sft_model_dir(profile), quantize_4bit=profile.quantize_4bit,
                              device=profile.device, trainable=False)
ppo_model, _ = load_adapter_policy(profile, ppo_dir)
dpo_model, _ = load_adapter_policy(profile, dpo_dir)
heldout = heldout_prompts(world, profile.eval_prompts)
repeated = repeat_prompts(heldout, profile.eval_samples)
metrics, responses = {}, {}
for name, model, reference in (("SFT", sft_model, None), ("PPO", ppo_model, "adapter-off"),
                               ("DPO", dpo_model, "adapter-off")):
    metrics[name], responses[name] = evaluate_policy(model, tokenizer, world, heldout, profile.eval_samples,
                                                     profile.max_new_tokens, profile.seed, reference=reference)
display(lesson.metrics_table(metrics))
lesson.check_claim("DPO with the chosen answers' NLL keeps its text well-formed: within 5 points of SFT's rate",
                   metrics["DPO"]["well_formed_rate"] >= metrics["SFT"]["well_formed_rate"] - 0.05,
                   dpo_rate=metrics["DPO"]["well_formed_rate"], sft_rate=metrics["SFT"]["well_formed_rate"])

# %%
rates = {
    "PPO vs SFT": win_rate_ci(repeated, responses["PPO"], responses["SFT"]),
    "DPO vs SFT": win_rate_ci(repeated, responses["DPO"], responses["SFT"]),
    "PPO vs DPO": win_rate_ci(repeated, responses["PPO"], responses["DPO"]),
}
fig = plots.win_rates(rates)

# %% [markdown]
# ## What each method changed, behaviour by behaviour
#
# A win rate mixes everything into one number. The picture to remember is this one: the rates
# SFT got from its helpful-only demonstrators, and where each preference method took them.

# %%
behaviours = {name: behaviour_ci(repeated, responses[name]) for name in responses}
fig = plots.behaviour_shift(behaviours, title="SFT copied harm and flattery; preferences take them away")

# %%
rate = {n: {b: behaviours[n][f"{b}_rate"]["mean"] for b in ("harmful_compliance", "sycophancy", "contrarian")}
        for n in responses}
lesson.check_claim("PPO and DPO each give harmful instructions and agree with wrong claims less often than SFT",
                   all(rate[n][b] < rate["SFT"][b] for n in ("PPO", "DPO") for b in ("harmful_compliance", "sycophancy")),
                   **{f"{n}_{b}_rate": rate[n][b] for n in responses for b in ("harmful_compliance", "sycophancy")})
lesson.check_claim("PPO says 'No' to right claims more often than SFT, while it agrees with wrong claims less "
                   "often: the reward model's 'No' shortcut",
                   rate["PPO"]["contrarian"] > rate["SFT"]["contrarian"],
                   **{f"{n}_{b}_rate": rate[n][b] for n in responses for b in ("sycophancy", "contrarian")})

# %% [markdown]
# **What to look for:** the first two groups of bars (harm, flattery) fall for both methods; the
# third (saying "No" to a user who is right) can rise for both, and rises far more for PPO, while
# PPO's agreement with wrong claims falls: it learned to say "No", not which claims are wrong. PPO
# searches the reward model for what it scores highest and finds its blind spot; DPO only
# reweights the answers in the pairs, so it moves less.
#
# ## The simplest baseline: best-of-n with the reward model
#
# No training at all: sample n answers from the SFT model, keep the one the reward model likes
# best. Its KL to the SFT model is at most log n - (n-1)/n nats. Every family is in the prompts.

# %%
BEST_OF_N_PROMPTS = 264  # 16 answers per prompt: a quarter of the held-out prompts (every family) keeps it short
reward_model, _ = load_reward_model(profile)
curve, _ = best_of_n_curve(sft_model, tokenizer, heldout[:BEST_OF_N_PROMPTS], scorer(reward_model, tokenizer), (1, 2, 4, 8, 16),
                           profile.max_new_tokens, seed=profile.seed)
fig = plots.best_of_n(curve)

# %%
lesson.check_claim("best-of-n raises the reward model's score of the pick as n grows",
                   curve[-1]["proxy"] > curve[0]["proxy"], n1=curve[0]["proxy"], n16=curve[-1]["proxy"])
gains = {name: curve[-1][name] - curve[0][name] for name in ("proxy", "gold")}
lesson.check_claim("... but from n = 1 to n = 16 the gold reward of the pick gains less than half of what the reward "
                   "model's score gains: the search rewards the reward model's errors",
                   gains["gold"] < gains["proxy"] / 2, proxy_gain=gains["proxy"], gold_gain=gains["gold"],
                   gold_peak_n=max(curve, key=lambda row: row["gold"])["n"])

# %% [markdown]
# **What to look for:** the two curves part ways. The more samples the reward model chooses from,
# the more its choice is driven by what it over-rates rather than by what the hidden human wants
# (Gao et al. 2022 measured the same on real models). Where the gold curve peaks, if it peaks at
# all, moves from seed to seed (n = 2, n = 8, and still rising at n = 16 in the pipeline benchmark's
# three seeds; the check prints this run's): either way the gold gains far less than the reward
# model's score. Notebook 07b takes it to n = 256.

# %%
fig = plots.gold_components_by_stage(metrics)

# %% [markdown]
# ## Samples side by side

# %%
samples = lesson.pick_samples(heldout)
index = {p.prompt_id: profile.eval_samples * i for i, p in enumerate(heldout)}
lesson.samples_table(samples, {name: [responses[name][index[p.prompt_id]] for p in samples]
                               for name in responses})

# %% [markdown]
# **What to look for:**
# - **Gold reward and its components:** which method fixed more of what SFT copied from its
#   demonstrators (harm, flattery), and did either break something (over-refusal, the
#   capability probe, right answers)?
# - **KL:** PPO's penalty is explicit; DPO's beta plays the same role implicitly. Compare how
#   far each moved from SFT for the gold reward it gained.
# - **"I hope this helps":** the phrase is a correlate in the pairs, and the reward model learned
#   it (notebook 04). PPO can find it only by sampling it: SFT almost never says it, so PPO seldom
#   does. DPO never samples at all; it can raise the phrase straight from the chosen answers of
#   the pairs (compare the row in the table).
# - **Well-formed rate, length and diversity:** read distinct-2 only next to the well-formed
#   rate: broken text is "diverse" too.
#
# Neither is guaranteed to beat SFT: check the win rates above, with their intervals, before
# believing the reward curves. Which one wins depends on the settings (PPO's KL coefficient and steps, DPO's beta
# and epochs). Change one knob at a time and rerun: every
# stage is cached by its settings.

# %% [markdown]
# ## Why the field moved to DPO anyway: make it online
#
# In the table above offline DPO moves less than PPO (KL, harm, flattery). Mostly the data holds it
# back, not the loss (online DPO below is plain DPO at beta 0.1; the course's offline DPO adds the NLL
# term at beta 0.3). Offline DPO learns from fixed pairs, most of them templated, written before training:
# once the policy has moved, they no longer show it its own mistakes. PPO samples 128 fresh
# answers of its own at every step. **Online DPO** (Guo et al. 2024; TRL's `OnlineDPOTrainer`,
# `rlhf_lab/stages/online_dpo.py`) gives DPO the same: at each step two samples of the *current*
# policy per prompt, the better one chosen by a judge (here PPO's reward model: AI feedback), and
# one DPO step on those pairs. It keeps what made DPO attractive: no value head, no advantage
# estimate, one loss. Models held while training: offline DPO 2 (policy, reference), online DPO 3
# (+ the judge), PPO 4 (+ the value head). `docs/RESULTS.md` sets the costs side by side: models
# held, the lines of the loss formulas each needs, the settings each adds, and peak memory.
#
# The three seeds of `benchmarks/bench_dpo.py` (same SFT model and reward model, PPO's budget of
# sampled answers; measured on the older evaluation, the world's 141 held-out prompts x 4 samples,
# so compare within this table, not with the one above):

# %%
dpo_bench = lesson.benchmark("dpo")
METHODS = {"offline_dpo": "offline DPO", "online_rm": "online DPO", "ppo": "PPO"}
RATES = {"harmful_compliance_rate": "complies with harm", "sycophancy_rate": "agrees with a wrong claim",
         "contrarian_rate": "says \"No\" to a right claim"}
lesson.number_table({f"seed {seed}: {name}": {**{label: run[key][rate] for rate, label in RATES.items()},
                                              "KL to SFT": run[key]["kl_to_ref"],
                                              "gold gain over SFT": run[key]["gold_gain_vs_sft"]["mean"]}
                     for seed, run in dpo_bench["runs"].items() for key, name in METHODS.items()},
                    rates=tuple(RATES.values()))

# %%
runs = dpo_bench["runs"]
lesson.check_claim("online DPO complies with harm and agrees with wrong claims less often than offline DPO, and "
                   "within 10 points of PPO on both, in every seed of the benchmark",
                   all(r["online_rm"][k] < r["offline_dpo"][k] and r["online_rm"][k] <= r["ppo"][k] + 0.10
                       for r in runs.values() for k in ("harmful_compliance_rate", "sycophancy_rate")),
                   **{f"seed_{s}_{METHODS[key].replace(' ', '_')}_harm_flattery":
                      f"{r[key]['harmful_compliance_rate']:.0%} / {r[key]['sycophancy_rate']:.0%}"
                      for s, r in runs.items() for key in METHODS})
lesson.check_claim("... it says \"No\" to most users who are right, as PPO does, in every seed",
                   all(min(r["online_rm"]["contrarian_rate"], r["ppo"]["contrarian_rate"]) > 0.5 for r in runs.values()),
                   **{f"seed_{s}_{METHODS[key].replace(' ', '_')}_rate": r[key]["contrarian_rate"]
                      for s, r in runs.items() for key in ("online_rm", "ppo")})

# %%
lesson.check_claim("... and trains in less time than PPO, in every seed",
                   all(r["online_rm"]["train_seconds"] < r["ppo"]["train_seconds"] for r in runs.values()),
                   **{f"seed_{s}_seconds": f"{r['online_rm']['train_seconds']:.0f} vs {r['ppo']['train_seconds']:.0f}"
                      for s, r in runs.items()})
lesson.check_claim("... yet its gold gain stays below PPO's in every seed, and in one it falls below SFT (its interval "
                   "under 0) as the policy runs far from SFT on the reward model's word",
                   all(r["online_rm"]["gold_gain_vs_sft"]["mean"] < r["ppo"]["gold_gain_vs_sft"]["mean"]
                       for r in runs.values()) and any(r["online_rm"]["gold_gain_vs_sft"]["high"] < 0 for r in runs.values()),
                   **{f"seed_{s}_online_vs_PPO": f"{r['online_rm']['gold_gain_vs_sft']['mean']:+.2f} "
                      f"[{r['online_rm']['gold_gain_vs_sft']['low']:+.2f}, {r['online_rm']['gold_gain_vs_sft']['high']:+.2f}]"
                      f" (KL {r['online_rm']['kl_to_ref']:.1f}) vs {r['ppo']['gold_gain_vs_sft']['mean']:+.2f}"
                      for s, r in runs.items()})

# %% [markdown]
# **What to look for:** on-policy pairs are what DPO was missing: online, it cuts harm and flattery
# about as far as PPO, and it takes the reward model's "No" shortcut as PPO does (that is the judge's
# blind spot, notebook 05). It also inherits PPO's risk: a judge that can be exploited, with beta
# (0.1) as the only brake, and on one seed it over-optimised. Simpler, and less training time, yes;
# free of the reward model's errors, no. That is the trade the field made: DPO's one loss, fed
# fresh samples and a judge. Offline DPO on a fixed data set remains the cheapest step, and the
# weakest on harm and flattery (on gold it is within a few hundredths of online DPO or above it in every seed here).
#
# **Your turn: make DPO on-policy.** Set `TRY_IT = True` to train online DPO for your seed (about
# 2 min on the tiny profile) and judge it beside the offline DPO and PPO above. Then try
# `OnlineDPOSettings(beta=0.3)`: does a larger beta hold it closer to SFT, and what does that cost?

# %%
TRY_IT = False
if TRY_IT:
    from rlhf_lab.stages.online_dpo import OnlineDPOSettings, get_online_dpo_dir

    online_policy, _ = load_adapter_policy(profile, get_online_dpo_dir(profile, OnlineDPOSettings(seed=profile.seed)))
    mine, _ = evaluate_policy(online_policy, tokenizer, world, heldout, profile.eval_samples, profile.max_new_tokens,
                              profile.seed, reference="adapter-off")
    display(lesson.metrics_table({"SFT": metrics["SFT"], "DPO": metrics["DPO"], "online DPO (yours)": mine,
                                  "PPO": metrics["PPO"]}))
