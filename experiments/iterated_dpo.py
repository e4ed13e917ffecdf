"""Iterated DPO: the comparison data gains pairs of the DPO policy's own samples, and DPO is
trained again (from the same SFT model, with the same settings), the way iterated RLHF
(rlhf_lab/stages/iterate.py) retrains the reward model on the PPO policy's samples. Behind the
issue "RLHF that works in the lab world": does on-policy preference data lift DPO above SFT?

    RLHF_LAB_CACHE=<seed 0's warm cache> python experiments/iterated_dpo.py --seeds 0 --rounds 3

Every held-out prompt x 4 samples, judged by the hidden human; win rate against SFT's samples
with its 95% bootstrap interval, per round. Results: experiments/results/iterated_dpo.json. About
3 min per round on 2 CPU cores (sampling every training prompt x 4, then DPO).
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, previous_runs, save  # noqa: E402
from sweeps import compare_with_sft  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from rlhf_lab import cache, models  # noqa: E402
from rlhf_lab import evaluate as E  # noqa: E402
from rlhf_lab.config import get_profile  # noqa: E402
from rlhf_lab.stages.dpo import DPOSettings, get_dpo_model_dir, train_dpo  # noqa: E402
from rlhf_lab.stages.common import load_adapter_policy  # noqa: E402
from rlhf_lab.stages.iterate import policy_comparisons  # noqa: E402
from rlhf_lab.stages.pretrain import get_tokenizer  # noqa: E402
from rlhf_lab.stages.sft import get_sft_model_dir  # noqa: E402


def run_seed(seed: int, rounds: int) -> dict:
    profile = get_profile("tiny", seed=seed)
    tokenizer, world = get_tokenizer(profile), cache.world_for(seed)
    prompts = E.heldout_prompts(world)
    settings = DPOSettings()
    sft_dir = get_sft_model_dir(profile, progress=False)
    sft = models.load_model(sft_dir, quantize_4bit=False, device="cpu")
    sft_metrics, sft_responses = E.evaluate_policy(sft, tokenizer, world, prompts, 4, seed=2, reference=None)
    result = {"sft": {"gold": sft_metrics["gold_ci"], "well_formed": sft_metrics["well_formed_rate"]}, "rounds": []}
    policy_dir, extra = get_dpo_model_dir(profile, settings, progress=False), []
    for round_ in range(1, rounds + 1):
        start = time.perf_counter()
        if round_ > 1:  # the last round's policy, sampled and labelled, joins the comparison data
            extra += policy_comparisons(profile, policy_dir, settings)
            policy_dir = Path(tempfile.mkdtemp(prefix=f"iterated-dpo-{seed}-{round_}-"))
            policy, _, _ = train_dpo(profile, settings, out_dir=policy_dir, sft_dir=sft_dir,
                                     extra_rows=extra, progress=False)
        else:
            policy, _ = load_adapter_policy(profile, policy_dir)
        row = {"round": round_, "extra_pairs": len(extra), **compare_with_sft(policy, tokenizer, world, prompts,
                                                                              sft_responses)}
        row["seconds"] = round(time.perf_counter() - start, 1)
        print(f"seed {seed} round {round_}: win vs SFT {row['win_vs_sft']['mean']:.1%} "
              f"[{row['win_vs_sft']['low']:.1%}, {row['win_vs_sft']['high']:.1%}], gold {row['gold']['mean']:+.2f} "
              f"(SFT {sft_metrics['gold_ci']['mean']:+.2f}), well-formed {row['well_formed']:.0%}, "
              f"KL {row['kl_to_sft']:.2f}", flush=True)
        result["rounds"].append(row)
    return result


if __name__ == "__main__":
    torch.set_num_threads(2)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    runs = previous_runs("iterated_dpo")  # seeds measured apart (each on its own cache) merge
    for seed in args.seeds:
        runs[str(seed)] = run_seed(seed, args.rounds)
        save("iterated_dpo", {"machine": machine(), "runs": dict(sorted(runs.items()))})
