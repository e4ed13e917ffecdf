"""Does the base model learn to COPY the asked subject? Pretraining variants, each followed by
the default SFT, measured where the lab world's answers went wrong (notebook 02).

    python experiments/pretrain_copy.py '{}' '{"pretrain_steps": 800, "pretrain_batch_size": 16}'

Each argument is a JSON dict of profile changes (pretrain_steps, pretrain_batch_size,
pretrain_lr, seed). Per variant: the mean probability that the base and the SFT model give the
first token of the asked subject in the ideal answers to held-out helpful questions (and the SFT
model on its own training demonstrations: `rlhf_lab.evaluate.subject_token_certainty`), and
SFT's held-out gold reward at temperature 1 (every held-out prompt x 4). Uses $RLHF_LAB_CACHE,
so a variant already built loads in seconds. Measured in session 5 (seed 0):
experiments/results/sweeps.json, reference_points.pretraining_variants_seed0.
"""

import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from rlhf_lab import cache, models  # noqa: E402
from rlhf_lab.config import get_profile  # noqa: E402
from rlhf_lab.evaluate import evaluate_responses, heldout_prompts, repeat_prompts, subject_token_certainty  # noqa: E402
from rlhf_lab.sampling import sample, texts  # noqa: E402
from rlhf_lab.stages.pretrain import get_base_model_dir, get_tokenizer  # noqa: E402
from rlhf_lab.stages.sft import get_sft_model_dir  # noqa: E402
from rlhf_lab.world.responses import demonstration  # noqa: E402


def measure(changes: dict) -> dict:
    profile = get_profile("tiny", **changes)
    world = cache.world_for(profile.seed)
    start = time.perf_counter()
    base_dir = get_base_model_dir(profile, progress=False)
    pretrain_seconds = time.perf_counter() - start
    sft_dir = get_sft_model_dir(profile, progress=False)
    tokenizer = get_tokenizer(profile)
    base, sft = (models.load_model(d, quantize_4bit=False, device="cpu") for d in (base_dir, sft_dir))
    demos = [d["messages"] for d in world.sft_demonstrations()]
    trained = [(world.prompt_by_text(m[0]["content"]), m[1]["content"]) for m in demos]
    trained = [(p, r) for p, r in trained if p.family == "helpful"]
    unseen = world.prompts("heldout", family="helpful")
    ideal = [demonstration(p) for p in unseen]  # the right answer in the demonstrators' plain style
    repeated = repeat_prompts(heldout_prompts(world), 4)
    scored = evaluate_responses(repeated, texts(sample(sft, tokenizer, [p.text for p in repeated], seed=1)))
    return {"changes": changes, "pretrain_seconds": round(pretrain_seconds),
            "base_subject_heldout": subject_token_certainty(base, tokenizer, unseen, ideal)["subject"],
            "sft_subject_train": subject_token_certainty(sft, tokenizer, *zip(*trained))["subject"],
            "sft_subject_heldout": subject_token_certainty(sft, tokenizer, unseen, ideal)["subject"],
            "sft_heldout_gold": scored["gold_reward"], "sft_gold_by_family": scored["gold_by_family"],
            "sft_well_formed": scored["well_formed_rate"]}


if __name__ == "__main__":
    torch.set_num_threads(2)
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for argument in sys.argv[1:]:
        print(json.dumps(measure(json.loads(argument))), flush=True)
