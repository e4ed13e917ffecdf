"""tools/readme_results.py: the generated tables of README.md and docs/RESULTS.md, from the benchmarks' files."""

import importlib.util
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent / "tools" / "readme_results.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("readme_results", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record(harm, gain):
    return {"harmful_compliance_rate": harm, "sycophancy_rate": 0.5, "contrarian_rate": 0.25, "kl_to_ref": 1.234,
            "gold_gain_vs_sft": {"mean": gain, "low": gain - 0.1, "high": gain + 0.1}, "train_seconds": 88.4}


def test_the_dpo_table_has_a_row_per_method_and_a_cell_per_seed():
    tool = load_tool()
    runs = {seed: {variant: record(0.1 * (i + 1), 0.2) for i, variant in enumerate(tool.DPO_VARIANTS)}
            for seed in ("0", "1")}
    table = tool.dpo_table({"runs": runs, "note": "a note"})
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(" | ")[0][2:] for row in rows] == list(tool.DPO_VARIANTS.values())
    assert "| 10% / 10% | 50% / 50% | 25% / 25% | 1.23 / 1.23 | +0.20 [+0.10, +0.30] / +0.20 [+0.10, +0.30] | 88 / 88 |" \
        in rows[0]
    assert "seed 0 / seed 1" in table and "a note" in table


def test_the_dpo_cost_table_shows_models_formulas_settings_and_memory_where_measured():
    tool = load_tool()
    cost = {variant: {"models_held": ["policy", "reference"], "formulas": ["dpo_loss"], "formula_lines": 11,
                      "settings": ["beta", "learning_rate"]} for variant in tool.DPO_VARIANTS}
    cost["ppo"]["peak_memory_mib"] = {"0": {"peak_mib": 812.4, "training_adds_mib": 95.6}}
    rows = [line for line in tool.dpo_cost_table(cost) if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == len(tool.DPO_VARIANTS)
    assert "| 2 (policy, reference) | 11 (dpo_loss) | 2 | not measured |" in rows[0]
    assert rows[-1].endswith("| seed 0: 812 (+96) |")
    assert tool.dpo_cost_table(None) == []


def test_every_block_names_a_results_file_and_a_marker_its_target_holds():
    tool = load_tool()
    root = TOOL.parent.parent
    for file, name, source, _ in tool.BLOCKS:
        assert f"<!-- {name}:start -->" in (root / file).read_text(), (file, name)
        assert (root / "benchmarks" / "results" / source).exists(), source
