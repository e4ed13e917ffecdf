"""Write exercises/*.ipynb and solutions/*.ipynb from one source, so they stay in step.

Every notebook is a list of cells. An exercise cell (:func:`exercise`) holds a function:
in exercises/ its body is a stub that raises NotImplementedError, in solutions/ the worked
answer. Every other cell is the same in both. Exercise cells carry the tag "solution" and
start with MARKER, which is how the tests find them (tests/exercises).

    python tools/make_exercises.py            # write both folders (no outputs)
    python tools/make_exercises.py --execute  # ... and run the solutions, saving outputs

The solutions must agree with rlhf_lab (losses.py, diversity.py, sampling.py): the tests
grade them with rlhf_lab.grader, whose golden numbers come from rlhf_lab itself.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
MARKER = "# EXERCISE:"
SOLUTION_TAG = "solution"
STARS = {1: "★☆☆ (warm-up)", 2: "★★☆ (core)", 3: "★★★ (challenge)"}


@dataclass(frozen=True)
class Cell:
    kind: str  # "markdown", "code" or "exercise"
    source: str
    solution: str = ""  # exercise cells only


def md(text: str) -> Cell:
    return Cell("markdown", textwrap.dedent(text).strip())


def code(text: str) -> Cell:
    return Cell("code", textwrap.dedent(text).strip())


def exercise(header: str, stub_body: str, solution_body: str) -> Cell:
    """``header``: imports + ``def`` line + docstring; the bodies are indented by 4 spaces."""
    header = textwrap.dedent(header).strip("\n")
    intro = f"{MARKER} write the body of this function, then run the check below."
    indent = lambda body: textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    return Cell("exercise", f"{intro}\n{header}\n{indent(stub_body)}", f"{intro}\n{header}\n{indent(solution_body)}")


def title(number: int, name: str, stars: int, minutes: int, goals: str) -> Cell:
    how = (
        f"How it works: read the idea, fill in the function in the cell marked `{MARKER}`, run the "
        "`check(...)` cell for instant feedback (a table of passed and failed cases, with a hint for "
        "each failure), then plug your function into the real pipeline and watch it work. Stuck? The "
        "worked answer is in `solutions/` (give it 10 minutes first)."
    )
    return Cell("markdown", "\n\n".join([
        f"# Exercise {number}: {name}",
        f"**Difficulty:** {STARS[stars]} &nbsp;·&nbsp; **Time:** about {minutes} minutes",
        textwrap.dedent(goals).strip(),
        how,
    ]))


SETUP = code("""
    import torch

    from rlhf_lab.grader import check

    # The exercise models are tiny: one thread is as fast as two, and never fights other
    # processes for the cores (two threads on a busy 2-core machine were up to 100x slower).
    torch.set_num_threads(1)
    torch.manual_seed(0);
""")

PIPELINE_SETUP = code("""
    from rlhf_lab import models
    from rlhf_lab.config import get_profile
    from rlhf_lab.stages.sft import get_sft_model_dir
    from rlhf_lab.world import World

    profile = get_profile()  # 'tiny' unless RLHF_LAB_PROFILE says otherwise
    world = World(profile.seed)
    tokenizer = models.get_tokenizer(profile)
    sft_dir = get_sft_model_dir(profile)  # built and cached on first use (a few minutes, once)
""")

# A prompt + response batch for a causal LM: left-padded ids and a mask on the response tokens.
RESPONSE_BATCH = '''
    def response_batch(user_texts, responses):
        """Left-padded token ids of prompt + response (+ end token), and a mask on the response tokens."""
        prompt_ids = tokenizer([models.prompt_text(tokenizer, u) for u in user_texts], add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer([r + tokenizer.eos_token for r in responses], add_special_tokens=False)["input_ids"]
        width = max(len(p) + len(a) for p, a in zip(prompt_ids, answer_ids))
        ids, attention, mask = [], [], []
        for p, a in zip(prompt_ids, answer_ids):
            pad = width - len(p) - len(a)
            ids.append([tokenizer.pad_token_id] * pad + p + a)
            attention.append([0] * pad + [1] * (len(p) + len(a)))
            mask.append([0.0] * (pad + len(p)) + [1.0] * len(a))
        return torch.tensor(ids), torch.tensor(attention), torch.tensor(mask)
'''


def ppo_setup(overrides: str, steps: int = 4) -> Cell:
    return code(f"""
        from rlhf_lab.ppo import PPOConfig, PPOTrainer

        train_prompts = {{p.text: p for p in world.prompts("train")}}

        def gold_reward(user_texts, responses):
            \"\"\"The hidden human's score of each response (PPO only ever sees this number).\"\"\"
            return torch.tensor([world.gold_reward(train_prompts[u], r).total for u, r in zip(user_texts, responses)])

        policy = models.load_model(sft_dir, lora=models.LoraSettings.from_profile(profile))  # reference = adapter off
        config = PPOConfig(steps={steps}, batch_size=8, mini_batch_size=4, ppo_epochs=2, max_new_tokens=16, seed=0)
        trainer = PPOTrainer(policy, tokenizer, gold_reward, config, overrides={overrides})
        stats = trainer.train(list(train_prompts))
    """)


def stats_table(columns: str) -> Cell:
    return code(f"""
        for row in stats:
            print("  ".join(f"{{name}} {{row[name]:+.3f}}" for name in {columns}))
    """)


# ---------------------------------------------------------------------------
# 1. Masked token log-probabilities
# ---------------------------------------------------------------------------

LOGPROBS = [
    title(1, "log-probabilities of a response", 1, 15, """
    Every RLHF method needs one number again and again: how likely the model finds a
    response, token by token. DPO compares these numbers between two models, PPO turns them
    into probability ratios, the KL penalty subtracts them. You will compute them from raw
    logits, counting only the response's tokens.
    """),
    SETUP,
    md("""
    ## The idea

    A causal LM gives, at every position $t$, logits over the vocabulary for the *next* token.
    After shifting (the logits at $t$ now predict `labels[:, t]`), the log-probability of the
    token that is really there is

    $$\\log p(y_t) = \\log \\operatorname{softmax}(\\text{logits}_t)[y_t].$$

    A batch holds prompt + response, left-padded to a common length. Only response tokens
    count: `mask` is 1 on them and 0 on prompt and padding, and the answer must be exactly 0
    there, so that summing a row gives $\\log p(\\text{response} \\mid \\text{prompt})$.

    Shapes: `logits` (B, T, V), `labels` (B, T) integer ids, `mask` (B, T) of 0.0 / 1.0.
    Return (B, T).
    """),
    exercise('''
        import torch
        import torch.nn.functional as F


        def masked_token_logprobs(logits, labels, mask):
            """Per-token log-probabilities of `labels` under `logits`, zero where mask is 0: (B, T)."""
    ''', '''
        # 1. Normalise the logits into log-probabilities over the vocabulary (last dimension).
        # 2. Pick, at every position, the entry of the label (torch.gather).
        # 3. Zero the positions that do not count.
        raise NotImplementedError("Exercise 1: write masked_token_logprobs")
    ''', '''
        logprobs = F.log_softmax(logits.float(), dim=-1)
        picked = torch.gather(logprobs, dim=-1, index=labels.unsqueeze(-1)).squeeze(-1)
        return picked * mask
    '''),
    code("report = check(masked_token_logprobs)"),
    md("""
    ## See it work: which response does the model find likely?

    We load the course's SFT model and score a preference pair from the lab world: the
    response the hidden human prefers, and the one it rejects. The per-token numbers show
    *where* the model is surprised (very negative log-probs).
    """),
    PIPELINE_SETUP,
    code(RESPONSE_BATCH),
    code("""
        from rlhf_lab.losses import shift_for_next_token

        report.require()  # plug in only a function that passes every case
        sft_model = models.load_model(sft_dir, trainable=False)
        pair = world.preference_dataset(1, seed=7)[0]
        ids, attention, mask = response_batch([pair["prompt"]] * 2, [pair["chosen"], pair["rejected"]])
        with torch.no_grad():
            logits = sft_model(input_ids=ids, attention_mask=attention).logits
        logits, labels, mask = shift_for_next_token(logits, ids, mask)
        per_token = masked_token_logprobs(logits, labels, mask)

        print("prompt:", pair["prompt"])
        for name, row in (("chosen", 0), ("rejected", 1)):
            tokens = [(tokenizer.decode(labels[row, t]), per_token[row, t].item()) for t in range(labels.shape[1]) if mask[row, t]]
            print(f"\\n{name}: log p = {per_token[row].sum():.2f} over {len(tokens)} tokens")
            print("  " + "  ".join(f"{tok.strip() or repr(tok)}:{lp:.1f}" for tok, lp in tokens))
    """),
    md("""
    **What to look for.** The sums are the sequence log-probs DPO and PPO use. Longer
    responses have lower sums simply because they have more tokens; compare per-token
    averages when lengths differ. The most negative tokens are where this response departs
    from what the model expected.
    """),
]

# ---------------------------------------------------------------------------
# 2. Bradley-Terry reward-model loss
# ---------------------------------------------------------------------------

BRADLEY_TERRY = [
    title(2, "the reward model's loss (Bradley-Terry)", 1, 15, """
    A reward model turns "a human preferred response A over B" into a number per response.
    You will write the loss that teaches it, then train the course's reward model with
    *your* loss and measure how often it agrees with the hidden human.
    """),
    SETUP,
    md("""
    ## The idea

    The Bradley-Terry model says the chance a human prefers the chosen response is

    $$P(\\text{chosen} \\succ \\text{rejected}) = \\sigma(r_\\text{chosen} - r_\\text{rejected}).$$

    Training maximises the likelihood of the observed choices, i.e. minimises the mean
    negative log-likelihood over pairs:

    $$\\mathcal{L} = -\\frac{1}{B}\\sum_i \\log \\sigma\\big(r^{(i)}_\\text{chosen} - r^{(i)}_\\text{rejected}\\big).$$

    Only differences of rewards matter, so a reward model's scale and offset are arbitrary.
    Careful with large margins: $\\log(\\sigma(x))$ computed naively becomes $\\log 0$.
    """),
    exercise('''
        import torch
        import torch.nn.functional as F


        def bradley_terry_loss(chosen_rewards, rejected_rewards):
            """Mean of -log sigmoid(r_chosen - r_rejected) over the pairs: a scalar tensor."""
    ''', '''
        # Two lines are enough. Think about numerical stability for large margins.
        raise NotImplementedError("Exercise 2: write bradley_terry_loss")
    ''', '''
        return -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    '''),
    code("report = check(bradley_terry_loss)"),
    md("""
    ## Warm-up: recover hidden qualities from noisy choices

    Four responses have hidden qualities. A noisy annotator compares random pairs. Fitting
    one free reward per response with your loss recovers the ordering (up to a constant).
    """),
    code("""
        report.require()
        hidden_quality = torch.tensor([2.0, 0.5, -0.5, -1.0])
        first, second = torch.randint(0, 4, (2, 400))
        prefers_first = torch.rand(400) < torch.sigmoid(hidden_quality[first] - hidden_quality[second])
        chosen = torch.where(prefers_first, first, second)
        rejected = torch.where(prefers_first, second, first)

        rewards = torch.zeros(4, requires_grad=True)
        optimizer = torch.optim.Adam([rewards], lr=0.1)
        for _ in range(200):
            loss = bradley_terry_loss(rewards[chosen], rewards[rejected])
            optimizer.zero_grad(); loss.backward(); optimizer.step()
        print("hidden  :", hidden_quality - hidden_quality.mean())
        print("learned :", (rewards - rewards.mean()).detach().round(decimals=2))
    """),
    md("""
    ## See it work: train a reward model with your loss

    The course's reward model is the SFT model with a one-number `score` head (and a LoRA
    adapter). We train it for one pass over 384 pairs labelled by the simulated annotator,
    with *your* loss, then ask: on held-out pairs, how often does it prefer the response the
    hidden human prefers? (The reward-model notebook trains the full one with TRL's
    RewardTrainer, using this same loss.)
    """),
    PIPELINE_SETUP,
    code("""
        from tqdm.auto import tqdm

        from rlhf_lab.stages.reward import chat_texts
        from rlhf_lab.world import SimulatedAnnotator

        report.require()
        reward_model = models.load_model(sft_dir, kind="reward", lora=models.LoraSettings.from_profile(profile),
                                         tokenizer=tokenizer)

        def reward(user_texts, responses):
            batch = tokenizer(chat_texts(tokenizer, user_texts, responses), return_tensors="pt", padding=True,
                              add_special_tokens=False)
            return reward_model(**batch).logits.squeeze(-1)

        pairs = world.preference_dataset(384, annotator=SimulatedAnnotator(noise=0.1, seed=0), seed=0)
        optimizer = torch.optim.Adam([p for p in reward_model.parameters() if p.requires_grad], lr=3e-3)
        for start in tqdm(range(0, len(pairs), 16), desc="reward model"):  # 16 pairs a step
            batch = pairs[start : start + 16]
            prompts = [row["prompt"] for row in batch]
            loss = bradley_terry_loss(reward(prompts, [row["chosen"] for row in batch]),
                                      reward(prompts, [row["rejected"] for row in batch]))
            optimizer.zero_grad(); loss.backward(); optimizer.step()
        print(f"last batch loss {loss.item():.3f} (log 2 = 0.693 is a coin flip)")
    """),
    code("""
        heldout = [pair for pair in world.comparison_pairs(128, split="heldout", seed=1) if world.gold_preference(pair) != "tie"]
        with torch.no_grad():
            prompts = [pair.prompt.text for pair in heldout]
            prefers_a = reward(prompts, [p.response_a for p in heldout]) > reward(prompts, [p.response_b for p in heldout])
        human_prefers_a = torch.tensor([world.gold_preference(pair) == "a" for pair in heldout])
        print(f"held-out agreement with the hidden human: {(prefers_a == human_prefers_a).float().mean():.0%} "
              f"on {len(heldout)} pairs (coin flip: 50%)")
    """),
    md("""
    **What to look for.** Agreement above 50% on held-out prompts means the reward model
    learned something about the human's taste from comparisons alone, after 24
    gradient steps. It will not reach 100%: the annotator is noisy, 384 pairs are few, and
    the reward model only sees text.
    """),
]

# ---------------------------------------------------------------------------
# 3. DPO
# ---------------------------------------------------------------------------

DPO = [
    title(3, "the DPO loss and its implicit rewards", 2, 20, """
    Direct Preference Optimization (Rafailov et al. 2023) skips the reward model: it trains
    the policy on preference pairs directly. You will write its loss and then run a few DPO
    steps on the course's SFT model with it.
    """),
    SETUP,
    md("""
    ## The idea

    DPO's insight: the policy itself defines a reward, the *implicit reward*

    $$\\hat r(x, y) = \\beta \\big(\\log \\pi_\\theta(y \\mid x) - \\log \\pi_\\text{ref}(y \\mid x)\\big),$$

    how much more likely the policy makes a response than the frozen reference (the SFT model)
    does. DPO is then Bradley-Terry on implicit rewards:

    $$\\mathcal{L}_\\text{DPO} = -\\frac{1}{B}\\sum_i \\log \\sigma\\big(\\hat r(x_i, y^{(i)}_\\text{chosen}) - \\hat r(x_i, y^{(i)}_\\text{rejected})\\big).$$

    $\\beta$ plays the role of the KL coefficient: small $\\beta$ lets the policy move far from
    the reference. Inputs are *sequence* log-probs, shape (B,) (exercise 1, summed over
    tokens). Return `(loss, chosen_rewards, rejected_rewards)`, the rewards detached: they are
    for logging, and the gradient must flow through the loss only.
    """),
    exercise('''
        import torch
        import torch.nn.functional as F


        def dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta=0.1):
            """DPO sigmoid loss. Returns (loss, chosen_rewards, rejected_rewards), rewards detached."""
    ''', '''
        # 1. The implicit reward of every chosen and every rejected response.
        # 2. The Bradley-Terry loss on them (exercise 2).
        # 3. Return the loss and the two reward tensors, detached.
        raise NotImplementedError("Exercise 3: write dpo_loss")
    ''', '''
        chosen_rewards = beta * (policy_chosen_logps - ref_chosen_logps)
        rejected_rewards = beta * (policy_rejected_logps - ref_rejected_logps)
        loss = -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
        return loss, chosen_rewards.detach(), rejected_rewards.detach()
    '''),
    code("report = check(dpo_loss)"),
    md("""
    ## See it work: a few DPO steps with your loss

    The policy is the SFT model with a fresh LoRA adapter; switching the adapter off gives the
    reference, so no second copy of the model is needed. We take 16 preference pairs and run
    8 full-batch steps. Watch the loss fall from $\\log 2 \\approx 0.693$ and the implicit
    reward margin grow.
    """),
    PIPELINE_SETUP,
    code(RESPONSE_BATCH),
    code("""
        from tqdm.auto import tqdm

        from rlhf_lab.losses import sequence_logprob, shift_for_next_token

        report.require()
        policy = models.load_model(sft_dir, lora=models.LoraSettings.from_profile(profile))
        pairs = world.preference_dataset(16, seed=1)
        prompts = [p["prompt"] for p in pairs]
        chosen_batch = response_batch(prompts, [p["chosen"] for p in pairs])
        rejected_batch = response_batch(prompts, [p["rejected"] for p in pairs])

        def logps(model, batch):
            ids, attention, mask = batch
            logits = model(input_ids=ids, attention_mask=attention).logits
            return sequence_logprob(*shift_for_next_token(logits, ids, mask))

        with torch.no_grad(), policy.disable_adapter():  # the reference: the SFT model itself
            ref_chosen, ref_rejected = logps(policy, chosen_batch), logps(policy, rejected_batch)

        optimizer = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=3e-3)
        for step in tqdm(range(8), desc="DPO"):
            loss, chosen_rewards, rejected_rewards = dpo_loss(
                logps(policy, chosen_batch), logps(policy, rejected_batch), ref_chosen, ref_rejected, beta=0.1)
            optimizer.zero_grad(); loss.backward(); optimizer.step()
            if step % 2 == 0 or step == 7:
                margin = (chosen_rewards - rejected_rewards).mean().item()
                accuracy = (chosen_rewards > rejected_rewards).float().mean().item()
                print(f"step {step:2d}: loss {loss.item():.3f}  reward margin {margin:+.3f}  pairs ranked right {accuracy:.0%}")
    """),
    md("""
    **What to look for.** At step 0 the policy *is* the reference, so the loss is exactly
    log 2 and every implicit reward is 0. The margin then grows: the policy raises the chosen
    responses' likelihood relative to the rejected ones. Note these are training pairs; the
    DPO notebook measures what this does on held-out prompts.
    """),
]

# ---------------------------------------------------------------------------
# 4. KL estimators and the KL-shaped reward
# ---------------------------------------------------------------------------

KL = [
    title(4, "KL estimators and the KL-penalised reward", 2, 25, """
    PPO for language models maximises the reward model's score *minus* a penalty for drifting
    from the reference model. You will write three estimators of that drift (Schulman's k1,
    k2, k3) and the per-token reward PPO actually maximises, then run PPO with it.
    """),
    SETUP,
    md("""
    ## The idea, part 1: estimating KL from samples

    $\\mathrm{KL}(\\pi \\,\\|\\, \\pi_\\text{ref}) = \\mathbb{E}_{y \\sim \\pi}\\big[\\log \\pi(y) - \\log \\pi_\\text{ref}(y)\\big]$.
    We only see the tokens we sampled, so we estimate it per token. With
    `log_ratio` $= \\log \\pi(y_t) - \\log \\pi_\\text{ref}(y_t)$ and $r = \\pi_\\text{ref}(y_t) / \\pi(y_t)$:

    | kind | formula | unbiased? | always $\\ge 0$? |
    |---|---|---|---|
    | `k1` | `log_ratio` | yes | no |
    | `k2` | $\\tfrac12$ `log_ratio`$^2$ | no | yes |
    | `k3` | $(r - 1) - \\log r$ | yes | yes |

    Any other `kind` is a mistake: raise a `ValueError` that says which kinds exist.
    """),
    exercise('''
        import torch


        def kl_estimate(logprobs, ref_logprobs, kind="k1"):
            """Per-token estimate of KL(policy || reference) from sampled tokens: 'k1', 'k2' or 'k3'."""
    ''', '''
        # Start from log_ratio = logprobs - ref_logprobs; express r through it (r = exp(-log_ratio)).
        raise NotImplementedError("Exercise 4a: write kl_estimate")
    ''', '''
        log_ratio = logprobs - ref_logprobs
        if kind == "k1":
            return log_ratio
        if kind == "k2":
            return 0.5 * log_ratio**2
        if kind == "k3":
            return torch.expm1(-log_ratio) + log_ratio
        raise ValueError(f"Unknown KL estimator {kind!r}: choose 'k1', 'k2' or 'k3'.")
    '''),
    code("report_kl = check(kl_estimate)"),
    md("""
    ## The idea, part 2: the reward PPO maximises

    The reward model scores a whole response once. PPO spreads the KL penalty over tokens
    (Ziegler et al. 2019; InstructGPT): every response token $t$ gets
    $-\\beta\\, \\mathrm{KL}_t$, and the last response token also gets the score:

    $$r_t = -\\beta\\,\\mathrm{KL}_t + [t = \\text{last response token}]\\cdot \\text{score}.$$

    `scores` is (B,); the other tensors are (B, T) with `mask` 1 on response tokens. Rows may
    be padded on either side, so "last response token" is the last position where mask is 1.
    Return `(rewards, kl)`, both 0 outside the mask. Use your `kl_estimate` with `kind`, and
    build new tensors rather than changing the inputs.
    """),
    exercise('''
        def kl_penalized_rewards(scores, logprobs, ref_logprobs, mask, kl_coef, kind="k1"):
            """Per-token rewards: -kl_coef * KL_t on response tokens, plus the score on the last one."""
    ''', '''
        # 1. kl = your kl_estimate(...), zero outside the mask.
        # 2. The index of the last response token of each row (where is the last 1 in mask?).
        # 3. rewards = -kl_coef * kl, plus each row's score at that index.
        raise NotImplementedError("Exercise 4b: write kl_penalized_rewards")
    ''', '''
        kl = kl_estimate(logprobs, ref_logprobs, kind) * mask
        positions = torch.arange(mask.shape[1]).expand_as(mask)
        last = (positions * (mask > 0)).max(dim=1).values
        rewards = -kl_coef * kl
        rewards[torch.arange(len(scores)), last] += scores
        return rewards * mask, kl
    '''),
    code("report = check(kl_penalized_rewards)"),
    md("""
    ## See it work: how far is the SFT model from the base model?

    We sample responses from the SFT model and score their tokens under both models (a
    PPOTrainer's rollout does exactly that, with the base model as reference). Compare the
    three estimators on the same tokens.
    """),
    PIPELINE_SETUP,
    code("""
        from rlhf_lab.ppo import PPOConfig, PPOTrainer

        report_kl.require(); report.require()
        sft_policy = models.load_model(sft_dir, lora=models.LoraSettings.from_profile(profile))
        base_model = models.load_model(models.get_base_model_dir(profile), trainable=False)
        probe = PPOTrainer(sft_policy, tokenizer, lambda u, r: torch.zeros(len(u)), PPOConfig(max_new_tokens=12),
                           ref_model=base_model)
        rollout = probe.rollout([p.text for p in world.prompts("heldout")[:16]])
        mask = rollout.response_mask
        for kind in ("k1", "k2", "k3"):
            kl = kl_estimate(rollout.old_logprobs, rollout.ref_logprobs, kind)[mask > 0]
            print(f"{kind}: mean {kl.mean():.3f} nats/token, std {kl.std():.3f}, negative on {(kl < 0).float().mean():.0%} of tokens")
    """),
    md("""
    **What to look for.** k1 and k3 estimate the same number (both are unbiased), so their
    means differ only by sampling noise on these few tokens; but k1 is negative on many
    single tokens and spreads much wider, a poor *per-token* penalty. k2 is biased. k3 is
    never negative and has the smallest spread.

    ## See it work: PPO with your reward

    Now PPO with the usual reference (the SFT model: the LoRA adapter switched off) calls
    *your* `kl_penalized_rewards` at every step. Four short steps (8 prompts each), a few seconds.
    """),
    ppo_setup('{"kl_penalized_rewards": kl_penalized_rewards}'),
    stats_table('("reward", "kl", "kl_coef")'),
    md("""
    **What to look for.** The KL starts at 0 (the policy is the reference) and grows as PPO
    moves the policy; `kl_coef` times that KL is what each response pays for moving.
    """),
]

# ---------------------------------------------------------------------------
# 5. GAE
# ---------------------------------------------------------------------------

GAE = [
    title(5, "advantages with GAE", 3, 30, """
    PPO needs to know, for every token, whether it turned out better or worse than expected.
    Generalised Advantage Estimation (Schulman et al. 2016) answers that from the per-token
    rewards and a value head's predictions. You will write it, then run PPO with it.
    """),
    SETUP,
    md("""
    ## The idea

    The value head predicts $V_t$, the reward still to come after token $t$. The TD error
    compares one step of reality with that prediction:

    $$\\delta_t = r_t + \\gamma V_{t+1} - V_t, \\qquad V_{\\text{after the last response token}} = 0.$$

    GAE mixes TD errors over the future, decaying by $\\gamma\\lambda$ per step, computed right
    to left:

    $$A_t = \\delta_t + \\gamma\\lambda\\, A_{t+1}, \\qquad \\text{returns}_t = A_t + V_t.$$

    $\\lambda = 0$ trusts the value head (one-step TD); $\\lambda = 1$ uses the observed rewards
    (Monte-Carlo). The returns are the value head's training targets.

    **Masks.** `mask` is 1 on response tokens. Masked positions get 0 and must *neither
    receive nor pass on* advantage: when the right-to-left sweep crosses a masked position,
    what lies after it carries through unchanged. (With left padding and right padding only,
    this means: the response's last token sees $V = 0$ and $A = 0$ after it.)

    Shapes: `rewards`, `values`, `mask` are (B, T). Return `(advantages, returns)`, (B, T).
    """),
    exercise('''
        import torch


        def gae_advantages(rewards, values, mask, gamma=1.0, lam=0.95):
            """GAE, right to left. Returns (advantages, returns); both (B, T), zero outside mask."""
    ''', '''
        # Keep, per row, the "next" value and the "next" advantage (both start at 0).
        # Loop t from T-1 down to 0: compute delta and the advantage at t; store it where mask is 1;
        # update the "next" values only where mask is 1 (torch.where), so masked positions pass through.
        raise NotImplementedError("Exercise 5: write gae_advantages")
    ''', '''
        advantages = torch.zeros_like(rewards)
        next_value = torch.zeros_like(rewards[:, 0])
        next_advantage = torch.zeros_like(rewards[:, 0])
        for t in reversed(range(rewards.shape[1])):
            m = mask[:, t]
            delta = rewards[:, t] + gamma * next_value - values[:, t]
            advantage = delta + gamma * lam * next_advantage
            advantages[:, t] = advantage * m
            next_value = torch.where(m > 0, values[:, t], next_value)
            next_advantage = torch.where(m > 0, advantage, next_advantage)
        returns = (advantages + values) * mask
        return advantages, returns
    '''),
    code("report = check(gae_advantages)"),
    md("""
    ## Feel it: one response, by hand

    A 4-token response, score 1.0 on the last token, and a value head that is still clueless
    (all zeros). With $\\gamma = 1$ the advantage at each token is the discounted reward still
    to come; try $\\lambda = 0$ and $\\lambda = 1$ and explain the difference.
    """),
    code("""
        report.require()
        rewards = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
        for lam in (0.0, 0.5, 0.95, 1.0):
            advantages, _ = gae_advantages(rewards, torch.zeros(1, 4), torch.ones(1, 4), gamma=1.0, lam=lam)
            print(f"lam={lam:<4}: advantages {advantages[0].tolist()}")
    """),
    md("""
    ## See it work: PPO with your advantages

    The course's PPO trainer calls *your* `gae_advantages` at every step (with the gamma and
    lambda of its config). Four short steps (8 prompts each), a few seconds.
    """),
    PIPELINE_SETUP,
    ppo_setup('{"gae_advantages": gae_advantages}'),
    stats_table('("reward", "value_loss", "policy_loss")'),
    md("""
    **What to look for.** The value loss is how far the value head is from *your* returns.
    With a clueless value head (and $\\lambda = 1$) the first-token advantages are just the
    score; as the value head learns, advantages become "better or worse than usual", which
    is what makes PPO's updates less noisy.
    """),
]

# ---------------------------------------------------------------------------
# 6. PPO clipped losses
# ---------------------------------------------------------------------------

PPO = [
    title(6, "PPO's clipped policy and value losses", 3, 30, """
    PPO reuses each batch of samples for several gradient steps. Its clipped objective stops
    the policy from moving too far from the policy that drew the samples. You will write the
    clipped policy loss and the clipped value loss, then run PPO with both.
    """),
    SETUP,
    md("""
    ## The idea, part 1: the clipped policy loss

    With the probability ratio $\\rho_t = \\pi_\\theta(y_t) / \\pi_\\text{old}(y_t) = \\exp(\\log\\pi_\\theta - \\log\\pi_\\text{old})$
    and advantage $A_t$, PPO (Schulman et al. 2017) minimises, per token,

    $$\\ell_t = \\max\\big(-A_t \\rho_t,\\; -A_t \\operatorname{clip}(\\rho_t, 1-\\epsilon, 1+\\epsilon)\\big),$$

    averaged over response tokens (masked mean). The max is the *pessimistic* choice: once
    $\\rho_t$ has moved past $1 \\pm \\epsilon$ in the direction $A_t$ favours, the clipped term
    wins and its gradient is zero; the update stops pushing that token.

    Also return two diagnostics, both masked means and without gradient:
    - `clip_fraction`: the share of response tokens where the clipped term is strictly larger;
    - `approx_kl`: the k3 estimate (exercise 4) of the KL between the old and the new policy,
      with the *old* policy in the role of the policy: $x = \\log\\pi_\\text{old} - \\log\\pi_\\theta$,
      $k3 = e^{-x} - 1 + x$.
    """),
    exercise('''
        import torch


        def ppo_policy_loss(logprobs, old_logprobs, advantages, mask, clip_range=0.2):
            """PPO clipped surrogate loss. Returns (loss, clip_fraction, approx_kl)."""
    ''', '''
        # 1. ratio from the log-probs; the unclipped and the clipped per-token losses.
        # 2. loss = masked mean of their element-wise maximum.
        # 3. Diagnostics under torch.no_grad(): clip_fraction and approx_kl (masked means).
        raise NotImplementedError("Exercise 6a: write ppo_policy_loss")
    ''', '''
        def masked_mean(values):
            return (values * mask).sum() / mask.sum().clamp(min=1)

        ratio = torch.exp(logprobs - old_logprobs)
        unclipped = -advantages * ratio
        clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
        loss = masked_mean(torch.max(unclipped, clipped))
        with torch.no_grad():
            clip_fraction = masked_mean((clipped > unclipped).float())
            x = old_logprobs - logprobs  # k3 with old in the role of the policy
            approx_kl = masked_mean(torch.expm1(-x) + x)
        return loss, clip_fraction, approx_kl
    '''),
    code("report_policy = check(ppo_policy_loss)"),
    md("""
    ## The idea, part 2: the clipped value loss

    The value head is trained toward the returns (exercise 5), but it too may move only
    $\\epsilon_V$ per update away from its rollout-time prediction $V_\\text{old}$:

    $$\\ell^V_t = \\tfrac12 \\max\\Big((V_t - R_t)^2,\\; \\big(V_\\text{old} + \\operatorname{clip}(V_t - V_\\text{old}, -\\epsilon_V, \\epsilon_V) - R_t\\big)^2\\Big),$$

    masked mean over response tokens. Return `(loss, clip_fraction)`, the fraction of tokens
    where the clipped error is strictly larger (no gradient).
    """),
    exercise('''
        import torch


        def ppo_value_loss(values, old_values, returns, mask, clip_range_value=0.2):
            """Clipped value loss. Returns (loss, clip_fraction)."""
    ''', '''
        raise NotImplementedError("Exercise 6b: write ppo_value_loss")
    ''', '''
        def masked_mean(x):
            return (x * mask).sum() / mask.sum().clamp(min=1)

        clipped_values = old_values + torch.clamp(values - old_values, -clip_range_value, clip_range_value)
        unclipped_error = (values - returns) ** 2
        clipped_error = (clipped_values - returns) ** 2
        loss = 0.5 * masked_mean(torch.max(unclipped_error, clipped_error))
        with torch.no_grad():
            clip_fraction = masked_mean((clipped_error > unclipped_error).float())
        return loss, clip_fraction
    '''),
    code("report_value = check(ppo_value_loss)"),
    md("""
    ## Feel it: where does the gradient stop?

    One token, advantage +1. We sweep the ratio and look at the gradient of your loss with
    respect to the log-prob. Past $1 + \\epsilon$ it is zero: the token has been pushed enough.
    """),
    code("""
        report_policy.require()
        for ratio in (0.7, 0.9, 1.0, 1.1, 1.19, 1.21, 1.5):
            logprob = torch.tensor([[float(torch.log(torch.tensor(ratio)))]], requires_grad=True)
            loss, _, _ = ppo_policy_loss(logprob, torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1), clip_range=0.2)
            loss.backward()
            print(f"ratio {ratio:<4}: loss {loss.item():+.3f}, d loss / d logprob {logprob.grad.item():+.3f}")
    """),
    md("""
    ## See it work: PPO with your losses

    Both of your losses replace the course's inside the PPO trainer. Four short steps (8 prompts
    each) with two epochs over each rollout, so the second epoch sees ratios different from 1
    and clipping can kick in.
    """),
    PIPELINE_SETUP,
    ppo_setup('{"ppo_policy_loss": ppo_policy_loss, "ppo_value_loss": ppo_value_loss}'),
    stats_table('("reward", "policy_loss", "value_loss", "clip_fraction", "approx_kl")'),
    md("""
    **What to look for.** `approx_kl` measures how far each update moved the policy from the
    one that sampled the batch; `clip_fraction` is the share of tokens the clip stopped. If
    they grow large, the learning rate or the number of epochs is too high.
    """),
]

# ---------------------------------------------------------------------------
# 7. distinct-n
# ---------------------------------------------------------------------------

DISTINCT = [
    title(7, "distinct-n: is the policy still diverse?", 1, 10, """
    RL fine-tuning tends to collapse a policy onto a few high-reward phrasings (mode
    collapse). distinct-n (Li et al. 2016) is the simplest gauge of it. You will write it
    and measure how sampling temperature changes the SFT model's diversity.
    """),
    SETUP,
    md("""
    ## The idea

    Split every text into words (`text.split()`: whitespace, case and punctuation kept), list
    its n-grams (runs of n consecutive words), then

    $$\\text{distinct-}n = \\frac{\\#\\,\\text{distinct n-grams over all texts}}{\\#\\,\\text{n-grams over all texts}}.$$

    N-grams never span two texts; a text with fewer than n words has none. If there are no
    n-grams at all, return 0.0. The course's evaluation uses this function as
    `rlhf_lab.diversity.distinct_n`.
    """),
    exercise('''
        def distinct_n(texts, n):
            """Distinct n-grams / all n-grams over `texts` (word n-grams; 0.0 if there are none)."""
    ''', '''
        raise NotImplementedError("Exercise 7: write distinct_n")
    ''', '''
        ngrams = []
        for text in texts:
            words = text.split()
            ngrams.extend(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
        if not ngrams:
            return 0.0
        return len(set(ngrams)) / len(ngrams)
    '''),
    code("report = check(distinct_n)"),
    md("""
    ## See it work: diversity of the SFT model at three temperatures

    Same 16 held-out prompts, one response each, sampled at three temperatures.
    """),
    PIPELINE_SETUP,
    code("""
        report.require()
        sft_model = models.load_model(sft_dir, trainable=False)
        user_texts = [p.text for p in world.prompts("heldout")[:16]]
        for temperature in (0.5, 1.0, 2.0):
            responses = models.generate(sft_model, tokenizer, user_texts, max_new_tokens=16, temperature=temperature, seed=0)
            print(f"temperature {temperature}: distinct-1 {distinct_n(responses, 1):.2f}, distinct-2 {distinct_n(responses, 2):.2f}"
                  f"   e.g. {responses[0]!r}")
    """),
    md("""
    **What to look for.** Low temperature repeats the same phrasings (low distinct-n); high
    temperature adds variety and, eventually, nonsense. Distinct-n measures variety, not
    quality: read it next to the gold reward. Notebook 07 tracks it through PPO.
    """),
]

# ---------------------------------------------------------------------------
# 8. best-of-n
# ---------------------------------------------------------------------------

BEST_OF_N = [
    title(8, "best-of-n sampling with a reward signal", 2, 15, """
    The simplest use of a reward model needs no training: sample n responses, keep the one the
    reward model likes best. It is the baseline PPO and DPO are measured against. You will write
    it and see how the hidden human's score grows with n.
    """),
    SETUP,
    md("""
    ## The idea

    - `generate(prompts) -> responses` samples one response per entry of a list (a list may
      repeat a prompt; each entry is a fresh sample).
    - `score(prompts, responses) -> scores` rates each (prompt, response) pair: a list of
      floats or a tensor, higher is better.

    For each prompt draw exactly `n` samples (one batched `generate` call is fastest), score
    them, and return the best sample per prompt, in the order of `prompts`. On a tie keep the
    earliest sample, so the result never depends on chance tie-breaking. The course's
    evaluation uses this function as `rlhf_lab.sampling.best_of_n`.
    """),
    exercise('''
        import torch


        def best_of_n(prompts, generate, score, n):
            """For every prompt, sample n responses and return the one `score` rates highest."""
    ''', '''
        # 1. One list with every prompt repeated n times (samples of one prompt side by side).
        # 2. responses = generate(that list); scores = score(that list, responses).
        # 3. Per prompt, the index of the best of its n scores (the first one on ties).
        raise NotImplementedError("Exercise 8: write best_of_n")
    ''', '''
        repeated = [prompt for prompt in prompts for _ in range(n)]
        responses = generate(repeated)
        scores = torch.as_tensor(score(repeated, responses), dtype=torch.float64).reshape(len(prompts), n)
        best = scores.argmax(dim=1)  # argmax returns the first maximum on ties
        return [responses[i * n + int(j)] for i, j in enumerate(best)]
    '''),
    code("report = check(best_of_n)"),
    md("""
    ## See it work: best-of-n with the hidden human as the judge

    The SFT model samples; the lab world's gold reward (the hidden human) scores. We measure the
    mean gold reward of the kept responses on 12 held-out prompts as n grows.
    """),
    PIPELINE_SETUP,
    code("""
        report.require()
        sft_model = models.load_model(sft_dir, trainable=False)
        heldout = {p.text: p for p in world.prompts("heldout")[:12]}

        def sample(user_texts):
            return models.generate(sft_model, tokenizer, user_texts, max_new_tokens=16, seed=len(user_texts))

        def gold_score(user_texts, responses):
            return [world.gold_reward(heldout[u], r).total for u, r in zip(user_texts, responses)]

        for n in (1, 2, 4, 8):
            kept = best_of_n(list(heldout), sample, gold_score, n)
            print(f"n={n}: mean gold reward of the kept responses {sum(gold_score(list(heldout), kept)) / len(kept):+.3f}")
    """),
    md("""
    **What to look for.** The score climbs with n, quickly at first, then more slowly
    (roughly like the expected maximum of n draws). Here the judge is the gold reward itself;
    with a *learned* reward model as the judge, large n starts to exploit the reward model's
    mistakes, the over-optimisation Gao et al. (2022) measured. Notebook 07 shows it.
    """),
]

NOTEBOOKS = {
    "01_token_logprobs.ipynb": LOGPROBS,
    "02_reward_model_loss.ipynb": BRADLEY_TERRY,
    "03_dpo_loss.ipynb": DPO,
    "04_kl_penalty.ipynb": KL,
    "05_gae_advantages.ipynb": GAE,
    "06_ppo_losses.ipynb": PPO,
    "07_distinct_n.ipynb": DISTINCT,
    "08_best_of_n.ipynb": BEST_OF_N,
}


def build(cells: list[Cell], solved: bool) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for index, cell in enumerate(cells):
        if cell.kind == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source)
        elif cell.kind == "code":
            new = nbformat.v4.new_code_cell(cell.source)
        else:
            new = nbformat.v4.new_code_cell(cell.solution if solved else cell.source)
            new.metadata["tags"] = [SOLUTION_TAG]
        new.id = f"cell-{index:02d}"  # stable ids: regenerating does not churn the diff
        notebook.cells.append(new)
    return notebook


def write_all(execute: bool = False) -> None:
    for folder, solved in (("exercises", False), ("solutions", True)):
        (ROOT / folder).mkdir(exist_ok=True)
        for name, cells in NOTEBOOKS.items():
            nbformat.write(build(cells, solved), ROOT / folder / name)
    print(f"Wrote {len(NOTEBOOKS)} notebooks to exercises/ and solutions/")
    if execute:
        for name in NOTEBOOKS:
            path = ROOT / "solutions" / name
            print(f"executing {path.relative_to(ROOT)} ...", flush=True)
            subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                            "--inplace", "--ExecutePreprocessor.timeout=600", str(path)], check=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--execute", action="store_true", help="run the solution notebooks and keep their outputs")
    write_all(parser.parse_args().execute)
