"""What every experiment here measures: a trained policy against the pipeline's SFT model on
held-out prompts x 4 (behaviour rates, paired gold gain per family and overall, win rate)."""

import json
from pathlib import Path

from rlhf_lab import cache, models
from rlhf_lab.config import get_profile
from rlhf_lab.evaluate import evaluate_policy, gains_over_sft, heldout_prompts, repeat_prompts
from rlhf_lab.pipeline import PipelineSettings
from rlhf_lab.stages.common import load_adapter_policy
from rlhf_lab.stages.pretrain import get_tokenizer
from rlhf_lab.stages.sft import get_sft_model_dir

RATES = ("harmful_compliance_rate", "sycophancy_rate", "contrarian_rate", "over_refusal_rate", "right_answer_rate",
         "well_formed_rate", "capability_probe", "kl_to_ref", "gold_reward")


class AgainstSFT:
    """Seed 0's world, its held-out prompts and the SFT model's samples, sampled once (at the
    pipeline's SFT seed; each policy at its PPO seed, so the recorded results stay comparable)."""

    def __init__(self, seed: int = 0):
        self.profile = get_profile("tiny", seed=seed)
        self.settings = PipelineSettings().for_this_sft()
        self.world = cache.world_for(seed)
        self.prompts = heldout_prompts(self.world, self.profile.eval_prompts)
        self.repeated = repeat_prompts(self.prompts, 4)
        self.tokenizer = get_tokenizer(self.profile)
        sft = models.load_model(get_sft_model_dir(self.profile, self.settings.sft, progress=False), trainable=False)
        _, self.sft_responses = evaluate_policy(sft, self.tokenizer, self.world, self.prompts, 4,
                                                self.profile.max_new_tokens, seed * 100 + 2, None)

    def measure(self, policy_dir) -> dict:
        policy, _ = load_adapter_policy(self.profile, policy_dir)
        metrics, responses = evaluate_policy(policy, self.tokenizer, self.world, self.prompts, 4,
                                             self.profile.max_new_tokens, self.profile.seed * 100 + 4)
        gains = gains_over_sft(self.repeated, responses, self.sft_responses)
        return {**{k: metrics[k] for k in RATES}, **gains,
                "gold_gain_by_family": {f: v["mean"] for f, v in gains["gold_gain_by_family"].items()}}


def append(result: Path, record: dict) -> None:
    """Add one record to a results file (saved after each, so a crash keeps what was measured)."""
    records = json.loads(result.read_text()) if result.exists() else []
    result.parent.mkdir(exist_ok=True)
    result.write_text(json.dumps(records + [record], indent=1))
    print(json.dumps(record), flush=True)
