"""Base-model pretraining on this machine, from an empty cache: time, loss, samples.

    python experiments/pretrain.py

Target (foundation issue): at most 90 s on 2 CPU cores, and the model clearly learns the corpus.
"""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, save  # noqa: E402

os.environ["RLHF_LAB_CACHE"] = tempfile.mkdtemp(prefix="bench-pretrain-")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rlhf_lab import models  # noqa: E402
from rlhf_lab.config import get_profile  # noqa: E402
from rlhf_lab.stages import pretrain  # noqa: E402
from rlhf_lab.evaluate import capability_probe_accuracy  # noqa: E402
from rlhf_lab.world import World  # noqa: E402

profile = get_profile("tiny")
start = time.perf_counter()
directory = pretrain.get_base_model_dir(profile, progress=False)
wall = time.perf_counter() - start
report = pretrain.pretraining_report(profile)
tokenizer = pretrain.get_tokenizer(profile)
model = models.load_model(directory)
world = World()
prompts = [p.text for p in world.prompts("heldout")[::20]]
samples = dict(zip(prompts, models.generate(model, tokenizer, prompts, seed=0)))
loss = report["loss_history"]
result = {
    "machine": machine(),
    "wall_seconds_including_tokenizer_and_corpus": round(wall, 1),
    "training_seconds": round(report["seconds"], 1),
    "parameters": report["parameters"],
    "tokens_seen": report["tokens"],
    "tokens_per_second": round(report["tokens"] / report["seconds"]),
    "initial_loss": round(sum(loss[:10]) / 10, 3),
    "final_loss": round(report["final_loss"], 3),
    "capability_probe_accuracy": capability_probe_accuracy(model, tokenizer, world),
    "samples": samples,
    "target_seconds": 90,
}
for key, value in result.items():
    print(f"{key}: {value}")
save("pretrain", result)
