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
# # 05b · Beyond PPO: RLOO and GRPO
#
# Notebook 05's PPO learns a **critic**: a value head that predicts, token by token, how much
# reward is still to come. Advantages are "better or worse than the critic expected", which
# makes each update less noisy, at the price of a second network to train and keep honest.
#
# Much of today's practice drops the critic. **RLOO** (Ahmadian et al. 2024, "Back to
# Basics") and **GRPO** (Shao et al. 2024, DeepSeekMath) sample several responses to each
# prompt and judge each one against its siblings:
#
# | | baseline of a response's reward | KL to SFT | trains |
# |---|---|---|---|
# | PPO (ours, `rlhf_lab/ppo.py`) | first the other samples of the prompt (leave-one-out, as RLOO), then the value head's prediction per token (GAE) | in the reward, per token | policy + value head |
# | RLOO (`trl.RLOOTrainer`) | the mean reward of the *other* samples of the prompt | in the reward, per response | policy |
# | GRPO (`trl.GRPOTrainer`) | the group's mean, divided by the group's std | in the loss (default: none at all) | policy |
#
# Here all three start from the same SFT model, learn from the same reward model on the same
# training prompts, with the same number of sampled episodes, the same generation length and
# the same KL weight (set explicitly: GRPO's default `beta` is 0). Then one more run: GRPO on a
# **verifiable reward**, a checkable right answer instead of a learned judge, as in today's
# reasoning RL.
#
# *On the test budget (`RLHF_LAB_BUDGET=test`: what the tests run, and a quick look for you) every
# run gets a reduced budget (16 rollouts instead of 60, at 4x the learning rate); the committed
# notebook shows a learner's full run.*

# %%
import torch

from rlhf_lab import lesson, losses, plots
from rlhf_lab.config import get_profile, under_test_budget
from rlhf_lab.evaluate import heldout_prompts
from rlhf_lab.method_comparison import RUNS, evaluate_side_by_side, train_side_by_side
from rlhf_lab.stages.group_rl import GroupRLSettings
from rlhf_lab.stages.ppo import default_ppo_config
from rlhf_lab.world import World

lesson.notebook_setup()  # 2 CPU threads (RLHF_LAB_THREADS), small figures, the libraries' chatter off
profile = get_profile()  # "tiny" unless the environment says RLHF_LAB_PROFILE=gpu
print(lesson.setup_line(profile))
UNDER_TEST = under_test_budget()  # RLHF_LAB_BUDGET=test: the reduced budget (tests, a quick look)

# %% [markdown]
# ## Two baselines, no critic
#
# A rollout holds $k$ samples per prompt. RLOO subtracts the mean of the other $k-1$; GRPO
# centres on the group's mean and divides by its standard deviation, so every prompt pushes
# equally hard, however close its samples' rewards were. These are the course's versions
# (exercise 09 has you write them); the tests check them against what TRL's trainers compute.

# %%
lesson.show_code(losses.leave_one_out_advantages, "grouped =")
lesson.show_code(losses.group_relative_advantages, "grouped =")

# %%
rewards = torch.tensor([1.0, -1.0, -1.0, -1.0, 0.30, 0.31, 0.29, 0.30])
print("rewards     ", " ".join(f"{r:+.2f}" for r in rewards.tolist()))
print("RLOO        ", " ".join(f"{a:+.2f}" for a in losses.leave_one_out_advantages(rewards, 4).tolist()))
print("GRPO        ", " ".join(f"{a:+.2f}" for a in losses.group_relative_advantages(rewards, 4).tolist()))

# %% [markdown]
# **What to look for.** For the first prompt (one right answer among wrong ones) both baselines
# agree on the sign. For the second, whose samples differ by 0.01, RLOO's advantages are about
# 0.01, while GRPO scales them up to about ±1: GRPO treats noise in a flat group as seriously
# as a real difference.
#
# ## The same budget for every method
#
# PPO's defaults (notebook 05) set the budget: rollouts of 128 responses (32 prompts × 4),
# each used for 4 epochs of minibatches of 32, the same learning rate, KL weight and clip.
# `GroupRLSettings.like_ppo` copies them into TRL's `num_generations`, `num_iterations`,
# `steps_per_generation` and `beta`.

# %%
# On the test budget: 16 rollouts at 4x the learning rate, so that 2,048 episodes move the policies visibly.
config = default_ppo_config(profile, **({"steps": 16, "learning_rate": 4e-4} if UNDER_TEST else {}))
grpo = GroupRLSettings.like_ppo(config, "grpo")
print(f"every method: {grpo.episodes:,} episodes = {config.steps} rollouts x {config.batch_size} responses "
      f"({config.samples_per_prompt} per prompt), {config.ppo_epochs} epochs per rollout, "
      f"lr {config.learning_rate:g}, KL weight {config.kl_coef}, clip {config.clip_range}, "
      f"{config.max_new_tokens} new tokens at most")

# %% [markdown]
# ## Train all four
#
# Each policy is built once and cached; the times below are the training times measured when
# it was built (the benchmark `benchmarks/bench_group_rl.py` trains all four in one process).
# *Takes about 9 min the first time on the tiny profile (2 CPU cores); about 1.5 min on the test budget.*

# %%
with lesson.stopwatch() as clock:
    trained = train_side_by_side(profile, config)
print(f"ready in {clock.seconds:.0f} s; training time per 1,000 episodes, measured when each was built:")
for label, (_, report) in trained.items():
    print(f"  {label}: {report['seconds_per_1000_episodes']:.1f} s")
histories = {label: report["history"] for label, (_, report) in trained.items()}
fig = plots.methods_training(histories)

# %%
SHORT = {run.label: run.method.upper() + ("_verifiable" if run.reward == "verifiable" else "") for run in RUNS}
FROM_PREFERENCES = [run.label for run in RUNS if run.reward == "reward_model"]
VERIFIABLE = next(run.label for run in RUNS if run.reward == "verifiable")
rises = {SHORT[label]: lesson.first_and_last(histories[label], "reward") for label in FROM_PREFERENCES}
# On the test budget's short runs one of the three can end where it started (seed 1: GRPO -0.01).
lesson.check_claim("PPO, RLOO and GRPO each raise the reward model's score (on the test budget: at least two of them)",
                   sum(last > first for first, last in rises.values()) >= (2 if UNDER_TEST else 3),
                   **{name: last - first for name, (first, last) in rises.items()})

# %% [markdown]
# **What to look for.** The left panel is what each method sees (the verifiable reward lives on
# its own scale, from -1 for a wrong answer to +1 for a right one, and moves little: SFT already
# gets many facts right); the right
# panel is the hidden human's verdict on the same rollouts. All three methods trained on the
# reward model climb it (on the test budget's short runs one can end where it started); whether the
# gold reward follows is what the held-out evaluation measures.
#
# ## Measured on held-out prompts
#
# `profile.eval_samples` samples per held-out prompt (2 on the tiny profile), the same sampling seed
# for every policy. The gold gain is
# paired (each answer against SFT's answer to the same prompt), with a 95% bootstrap interval
# over requests.
# *Takes about 45 s on the tiny profile (2 CPU cores).*

# %%
metrics, responses = evaluate_side_by_side(profile, trained)
lesson.metrics_table(metrics, keys=("gold_reward", "harmful_compliance_rate", "sycophancy_rate", "contrarian_rate",
                                    "over_refusal_rate", "right_answer_rate", "well_formed_rate", "kl_to_ref",
                                    "capability_probe"))

# %%
for label in trained:
    gain = metrics[label]["gold_gain_vs_sft"]
    print(f"{label:>24}: gold gain over SFT {gain['mean']:+.2f} [{gain['low']:+.2f}, {gain['high']:+.2f}]")
fig = plots.behaviour_shift({label: m["behaviour_ci"] for label, m in metrics.items()},
                            title="Behaviour rates on held-out prompts (95% intervals)")

# %%
sft = metrics["SFT"]
lesson.check_claim("PPO, RLOO and GRPO on the reward model each comply with harmful requests no more often than SFT, "
                   "and at least two of them less often",
                   all(metrics[x]["harmful_compliance_rate"] <= sft["harmful_compliance_rate"] for x in FROM_PREFERENCES)
                   and sum(metrics[x]["harmful_compliance_rate"] < sft["harmful_compliance_rate"]
                           for x in FROM_PREFERENCES) >= 2,
                   SFT_rate=sft["harmful_compliance_rate"],
                   **{f"{SHORT[x]}_rate": metrics[x]["harmful_compliance_rate"] for x in FROM_PREFERENCES})
lesson.check_claim("... and each agrees with wrong claims no more often than SFT, at least two of them less often",
                   all(metrics[x]["sycophancy_rate"] <= sft["sycophancy_rate"] for x in FROM_PREFERENCES)
                   and sum(metrics[x]["sycophancy_rate"] < sft["sycophancy_rate"] for x in FROM_PREFERENCES) >= 2,
                   SFT_rate=sft["sycophancy_rate"],
                   **{f"{SHORT[x]}_rate": metrics[x]["sycophancy_rate"] for x in FROM_PREFERENCES})

# %% [markdown]
# **What to look for.** The rows "gives harmful instructions" and "sycophancy" fall for all
# three in the run above (on the test budget one of them can stay at SFT's rate): the
# lesson of notebook 05 does not depend on the critic. The reward model's blind spot (the row
# "contrarian": saying "No" to a user who is right, notebook 05's shortcut) is open to each of
# them: in most runs all three take it, far above SFT's rate. How much gold each gains differs
# from seed to seed (`docs/RESULTS.md` has seeds 0-2, measured on an older evaluation: the world's
# 141 held-out prompts x 4, where the row is "contradicts a right claim", a "No" or a wrong fact).
# With one reward model, the optimiser and the draw decide how far each goes.
#
# ## A reward you can check: GRPO on "is the answer right?"
#
# The last column learned from no judge at all: +1 for the right answer, -1 for a wrong one or
# a refusal, -0.5 for no answer, 0 on harmful requests (the gold reward's *helpful* component). It cannot be
# fooled: a wrong claim is wrong whatever the policy writes around it. But it says only what
# it checks.

# %%
verifiable = metrics[VERIFIABLE]
lesson.check_claim("the verifiable reward moves the policy less far from SFT than any reward-model method (KL)",
                   all(verifiable["kl_to_ref"] < metrics[x]["kl_to_ref"] for x in FROM_PREFERENCES),
                   verifiable=verifiable["kl_to_ref"], **{SHORT[x]: metrics[x]["kl_to_ref"] for x in FROM_PREFERENCES})
lesson.check_claim("it leaves harmful compliance higher than every reward-model method does",
                   all(verifiable["harmful_compliance_rate"] > metrics[x]["harmful_compliance_rate"]
                       for x in FROM_PREFERENCES),
                   verifiable_rate=verifiable["harmful_compliance_rate"],
                   **{f"{SHORT[x]}_rate": metrics[x]["harmful_compliance_rate"] for x in FROM_PREFERENCES})
lesson.check_claim("and it stays within 10 points of SFT's rate of right answers",
                   abs(verifiable["right_answer_rate"] - sft["right_answer_rate"]) <= 0.10,
                   SFT_rate=sft["right_answer_rate"], verifiable_rate=verifiable["right_answer_rate"],
                   **{f"{SHORT[x]}_rate": metrics[x]["right_answer_rate"] for x in FROM_PREFERENCES})

# %% [markdown]
# It cuts sycophancy slowly: over a full run (60 rollouts) on each of seeds 0-2, measured by
# `benchmarks/bench_group_rl.py` (its results file, read here; separate training runs with the code of
# their date, so its seed 0 differs from the run above by as much as one draw from another, and
# measured on the older evaluation, the world's 141 held-out prompts x 4 samples, not the 1,053 x 2
# above):

# %%
benchmark = lesson.benchmark("group_rl")["runs"]
by_seed = {f"seed {seed}": {"SFT": run["methods"]["SFT"]["sycophancy_rate"],
                            "verifiable": run["methods"][VERIFIABLE]["sycophancy_rate"]} for seed, run in benchmark.items()}
lesson.number_table(by_seed, fmt="{:.0%}")

# %%
lesson.check_claim("over a full run the verifiable reward cuts sycophancy below SFT's, on every seed of the benchmark",
                   all(s["verifiable"] < s["SFT"] for s in by_seed.values()),
                   **{f"{k}_{n}_rate": v for k, s in by_seed.items() for n, v in s.items()})

# %%
world = World(profile.seed)
heldout = heldout_prompts(world, profile.eval_prompts)
samples = lesson.pick_samples(heldout, per_family=1)
first = {p.prompt_id: profile.eval_samples * i for i, p in enumerate(heldout)}
lesson.samples_table(samples, {label: [responses[label][first[p.prompt_id]] for p in samples] for label in responses})

# %% [markdown]
# **What to look for.** A verifiable reward teaches exactly what it checks: the right fact. An
# answer that repeats a wrong claim states a wrong fact and loses; but "Yes, you are right, the
# banana is yellow." to a user who said white still scores +1 (the fact is right; the hidden human
# gives it -0.50, as in the table above), and it counts as
# agreeing: that is why sycophancy falls only slowly (the benchmark above). It keeps most of the
# right answers SFT gave (within 10 points, the check above), where the reward-model runs can trade some of them away (the
# row "right answer" of the table above), and it moves the policy far less (KL). But harmful requests
# score 0 whatever the policy does, so nothing pushes it to refuse them. That is why
# reasoning RL (math, code) uses verifiable rewards and preference RL still needs a learned
# judge: "harmless" has no checker.
#
# ## What each costs: time per 1,000 episodes
#
# Training time only (no model loading), on the same machine, divided by the episodes sampled
# and scored. The benchmark measures the four in one process for seeds 0-2.

# %%
seconds = {label: report["seconds_per_1000_episodes"] for label, (_, report) in trained.items()}
fig = plots.seconds_per_episodes(seconds)

# %% [markdown]
# **What to look for.** Every method pays for the same two things: sampling (generation, one
# token at a time) and the update passes (4 epochs over each rollout). The critic costs PPO a
# small value head on features it already computes; TRL's trainers add the machinery of a
# general library (its data pipeline, one extra log-probability pass per rollout when `beta`
# > 0). On a real model and a GPU, generation dominates and vLLM is what makes it fast.
#
# ## Takeaways
#
# - A **critic** gives every token its own baseline; a **group baseline** needs no second
#   network, only several samples per prompt, which RLHF rollouts draw anyway. Our PPO uses
#   both: the group baseline first (4 samples per prompt), then the critic on what is left.
# - With the same reward model, budget and KL weight, PPO, RLOO and GRPO fix the same
#   behaviours (harm and flattery fall), and each can take the reward model's "No" shortcut;
#   how far each goes differs from run to run.
# - A **verifiable reward** cannot be gamed on what it checks, and is silent on what it does not.
