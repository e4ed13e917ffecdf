"""Experiment (issue "Preferences teach what the demonstrators got wrong"): does a larger
rollout help PPO keep what SFT knows? Runs the control (gold reward) and PPO against the
reward model with PPOConfig changes, from the pipeline's own SFT model and reward model,
and prints behaviour rates and per-family paired gold gains over SFT (held-out x 4).

    python experiments/ppo_rollout_size.py '{"batch_size": 128, "mini_batch_size": 32}'

Uses $RLHF_LAB_CACHE (a warm seed-0 cache skips pretraining, SFT and the reward model).
Writes experiments/results/ppo_rollout_size.json (one record per setting and reward).
"""

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402

torch.set_num_threads(2)
from rlhf_lab import cache, models  # noqa: E402
from rlhf_lab.config import get_profile  # noqa: E402
from rlhf_lab.evaluate import evaluate_policy, gold_gain_by_family, gold_gain_ci, heldout_prompts, repeat_prompts, win_rate_ci  # noqa: E402,E501
from rlhf_lab.pipeline import PipelineSettings  # noqa: E402
from rlhf_lab.stages.dpo import load_adapter_policy  # noqa: E402
from rlhf_lab.stages.ppo import default_ppo_config, get_ppo_model_dir  # noqa: E402
from rlhf_lab.stages.pretrain import get_tokenizer  # noqa: E402
from rlhf_lab.stages.sft import get_sft_model_dir  # noqa: E402

RESULT = Path(__file__).parent / "results" / "ppo_rollout_size.json"
profile = get_profile("tiny", seed=0)
settings = PipelineSettings().for_this_sft()
world = cache.world_for(profile.seed)
prompts = heldout_prompts(world, profile.eval_prompts)
repeated = repeat_prompts(prompts, 4)
tokenizer = get_tokenizer(profile)
sft = models.load_model(get_sft_model_dir(profile, settings.sft, progress=False), trainable=False)
_, sft_responses = evaluate_policy(sft, tokenizer, world, prompts, 4, profile.max_new_tokens, profile.seed * 100 + 2, None)
records = json.loads(RESULT.read_text()) if RESULT.exists() else []
for changes in map(json.loads, sys.argv[1:]):
    for reward in ("gold", "reward_model"):
        start = time.perf_counter()
        directory = get_ppo_model_dir(profile, default_ppo_config(profile, **changes), settings.reward,
                                      progress=False, reward=reward)
        seconds = time.perf_counter() - start
        policy, _ = load_adapter_policy(profile, directory)
        metrics, responses = evaluate_policy(policy, tokenizer, world, prompts, 4, profile.max_new_tokens,
                                             profile.seed * 100 + 4)
        record = {"changes": changes, "reward": reward, "train_seconds": round(seconds, 1),
                  **{k: metrics[k] for k in ("harmful_compliance_rate", "sycophancy_rate", "contrarian_rate",
                                              "over_refusal_rate", "right_answer_rate", "well_formed_rate",
                                              "capability_probe", "kl_to_ref", "gold_reward")},
                  "win_rate_vs_sft": win_rate_ci(repeated, responses, sft_responses),
                  "gold_gain_vs_sft": gold_gain_ci(repeated, responses, sft_responses),
                  "gold_gain_by_family": {f: v["mean"] for f, v in
                                          gold_gain_by_family(repeated, responses, sft_responses).items()}}
        records.append(record)
        print(json.dumps(record), flush=True)
RESULT.parent.mkdir(exist_ok=True)
RESULT.write_text(json.dumps(records, indent=1))
