"""How fast the command line answers: `rlhf-lab --help` and `import rlhf_lab` (median of 5).

    python experiments/cli.py

Target (foundation issue): `rlhf-lab --help` under 1 s.
"""

import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, save  # noqa: E402


def median_seconds(command, runs=5):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 3)


cli = shutil.which("rlhf-lab") or os.path.join(os.path.dirname(sys.executable), "rlhf-lab")
result = {
    "machine": machine(),
    "rlhf_lab_help_s": median_seconds([cli, "--help"]),
    "import_rlhf_lab_s": median_seconds([sys.executable, "-c", "import rlhf_lab"]),
    "python_startup_s": median_seconds([sys.executable, "-c", "pass"]),
    "import_rlhf_lab_world_s": median_seconds([sys.executable, "-c", "import rlhf_lab.world"]),
    "target_help_s": 1.0,
}
for key, value in result.items():
    print(f"{key}: {value}")
save("cli", result)
