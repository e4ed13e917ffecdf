"""tools/claims_by_seed.py reads every check_claim's outcome back from an executed notebook."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import claims_by_seed  # noqa: E402  (tools/claims_by_seed.py)

from rlhf_lab import lesson  # noqa: E402


def executed_notebook(tmp_path, capsys) -> Path:
    """A notebook whose outputs are what check_claim prints and raises."""
    lesson.check_claim("PPO cuts harm", True, sft_rate=0.6, ppo_rate=0.05)
    printed = capsys.readouterr().out
    with pytest.raises(lesson.ClaimFailed) as failure:
        lesson.check_claim("DPO cuts harm", False, dpo_rate=0.7)
    cells = [{"cell_type": "code", "outputs": [{"output_type": "stream", "name": "stdout", "text": printed}]},
             {"cell_type": "code", "outputs": [{"output_type": "error", "ename": "ClaimFailed",
                                                "evalue": str(failure.value), "traceback": []}]}]
    path = tmp_path / "seed3" / "05_ppo.ipynb"
    path.parent.mkdir()
    path.write_text(json.dumps({"cells": cells}))
    return path


def test_each_claim_is_read_back_with_its_numbers_and_a_failure_is_marked(tmp_path, capsys):
    path = executed_notebook(tmp_path, capsys)
    assert claims_by_seed.outcomes(path) == [("PPO cuts harm", True, "sft_rate=60%, ppo_rate=5%"),
                                            ("DPO cuts harm", False, "dpo_rate=70%")]
    table = claims_by_seed.report(tmp_path)
    assert "| 05 | DPO cuts harm | **FAILED**: dpo_rate=70% |" in table
    assert table.endswith("1 failed check(s) over 1 seed(s).")


def test_a_claim_with_parentheses_and_a_name_with_one_is_read_apart(tmp_path, capsys):
    lesson.check_claim("PPO says 'No' (the shortcut)", True, **{"control (gold)_rate": 0.5, "PPO_rate": 0.25})
    cells = [{"cell_type": "code", "outputs": [{"output_type": "stream", "name": "stdout",
                                                "text": capsys.readouterr().out}]}]
    path = tmp_path / "05_ppo.ipynb"
    path.write_text(json.dumps({"cells": cells}))
    assert claims_by_seed.outcomes(path) == [("PPO says 'No' (the shortcut)", True,
                                            "control (gold)_rate=50%, PPO_rate=25%")]


def test_a_seed_run_before_a_claim_was_added_keeps_the_other_rows_aligned(tmp_path, capsys):
    executed_notebook(tmp_path, capsys)  # seed 3: both claims
    lesson.check_claim("DPO cuts harm", True, dpo_rate=0.2)
    later = tmp_path / "seed4" / "05_ppo.ipynb"  # seed 4: run before "PPO cuts harm" existed
    later.parent.mkdir()
    later.write_text(json.dumps({"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "stream", "name": "stdout", "text": capsys.readouterr().out}]}]}))
    table = claims_by_seed.report(tmp_path)
    assert "| 05 | PPO cuts harm | ok: sft_rate=60%, ppo_rate=5% | (not run) |" in table
    assert "| 05 | DPO cuts harm | **FAILED**: dpo_rate=70% | ok: dpo_rate=20% |" in table
