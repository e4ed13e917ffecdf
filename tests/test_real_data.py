"""Real preference data loaders: HH-RLHF and UltraFeedback binarized, on fixtures and on the
real HH-RLHF rows in ../shared/data (override with $RLHF_LAB_SHARED_DATA)."""

import gzip
import json
import re

import pytest

from rlhf_lab import real_data
from rlhf_lab.real_data import DataSourceError, MalformedRowsError, load_hh_rlhf, load_ultrafeedback
from rlhf_lab.real_formats import parse_hh_transcript


def hh(*turns):
    """A transcript from alternating (speaker, text) turns, the way HH-RLHF writes it."""
    return "".join(f"\n\n{speaker}: {text}" for speaker, text in turns)


GOOD_SINGLE = {"chosen": hh(("Human", "Hi?"), ("Assistant", "Hello!")),
               "rejected": hh(("Human", "Hi?"), ("Assistant", "Go away."))}
GOOD_MULTI = {
    "chosen": hh(("Human", "What is 2+2?"), ("Assistant", "4."), ("Human", "And 3+3?"), ("Assistant", "6.")),
    "rejected": hh(("Human", "What is 2+2?"), ("Assistant", "4."), ("Human", "And 3+3?"), ("Assistant", "7.")),
}
# (row, the reason's key words) for every kind of malformed row the loader must report.
MALFORMED = [
    ({"chosen": GOOD_SINGLE["chosen"]}, "needs the keys"),
    ({"chosen": hh(("Human", "Hi?")), "rejected": hh(("Human", "Hi?"))}, "ends with a Human turn"),
    ({"chosen": hh(("Human", "A"), ("Assistant", "x")), "rejected": hh(("Human", "B"), ("Assistant", "y"))},
     "differ before the final turn"),
    ({"chosen": hh(("Human", "Hi?"), ("Assistant", "")), "rejected": GOOD_SINGLE["rejected"]}, "empty"),
    ({"chosen": GOOD_SINGLE["chosen"], "rejected": GOOD_SINGLE["chosen"]}, "identical"),
    ({"chosen": hh(("Human", "a"), ("Human", "b"), ("Assistant", "c")),
      "rejected": hh(("Human", "a"), ("Human", "b"), ("Assistant", "d"))}, "alternate"),
    ({"chosen": "preamble" + GOOD_SINGLE["chosen"], "rejected": "preamble" + GOOD_SINGLE["rejected"]},
     "before the first turn"),
    ({"chosen": 3, "rejected": GOOD_SINGLE["rejected"]}, "not a string"),
]


@pytest.fixture
def hh_file(tmp_path):
    lines = [json.dumps(GOOD_SINGLE), json.dumps(GOOD_MULTI)] + [json.dumps(row) for row, _ in MALFORMED]
    lines += ["{not json", json.dumps(GOOD_SINGLE)]
    path = tmp_path / "hh.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_hh_converts_good_rows_and_reports_every_bad_one_with_its_row(hh_file):
    loaded = load_hh_rlhf(hh_file)
    assert loaded.rows_read == 2 + len(MALFORMED) + 2
    assert list(loaded.dataset["row"]) == [0, 1, len(MALFORMED) + 3]
    assert [p.row for p in loaded.problems] == list(range(2, 2 + len(MALFORMED) + 1))
    for problem, (_, words) in zip(loaded.problems, MALFORMED):
        assert words in problem.reason, (problem, words)
    assert "not valid JSON" in loaded.problems[-1].reason
    # every row either converts or is reported
    assert len(loaded.dataset) + len(loaded.problems) == loaded.rows_read
    assert "3 converted" in loaded.summary() and f"{len(MALFORMED) + 1} reported" in loaded.summary()


def test_hh_trl_format_and_multi_turn_prompt_keeps_all_turns(hh_file):
    row = load_hh_rlhf(hh_file).dataset[1]
    assert row["prompt"] == [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4."},
                             {"role": "user", "content": "And 3+3?"}]
    assert row["chosen"] == [{"role": "assistant", "content": "6."}]
    assert row["rejected"] == [{"role": "assistant", "content": "7."}]


def test_hh_on_problem_raise_and_warn(hh_file):
    with pytest.raises(MalformedRowsError, match="row 2"):
        load_hh_rlhf(hh_file, on_problem="raise")
    with pytest.warns(UserWarning, match="reported"):
        load_hh_rlhf(hh_file, on_problem="warn")


def test_hh_empty_final_turn_can_be_kept(tmp_path):
    path = tmp_path / "hh.jsonl"
    path.write_text(json.dumps(MALFORMED[3][0]) + "\n")
    assert len(load_hh_rlhf(path).problems) == 1
    kept = load_hh_rlhf(path, empty_response="keep")
    assert kept.problems == [] and kept.dataset[0]["chosen"][0]["content"] == ""


def test_hh_from_saved_dataset_directory_and_parquet(tmp_path):
    from datasets import Dataset

    rows = Dataset.from_list([GOOD_SINGLE, GOOD_MULTI])
    rows.save_to_disk(str(tmp_path / "saved"))
    rows.to_parquet(str(tmp_path / "rows.parquet"))
    for source in (tmp_path / "saved", tmp_path / "rows.parquet"):
        loaded = load_hh_rlhf(source)
        assert len(loaded.dataset) == 2 and not loaded.problems, source


def test_hub_id_offline_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataSourceError, match="local file"):
        load_hh_rlhf("Anthropic/hh-rlhf")
    with pytest.raises(DataSourceError, match="no such file"):
        load_hh_rlhf("./missing.jsonl")


def test_parse_transcript_keeps_inner_text():
    messages = parse_hh_transcript(hh(("Human", "line one\nline two"), ("Assistant", "ok")))
    assert messages[0]["content"] == "line one\nline two"


@pytest.mark.parametrize("text", [
    "Human: hi there\n\nAssistant: hello",  # a copy without HH's leading blank line
    "\r\n\r\nHuman: hi there\r\n\r\nAssistant: hello",  # Windows line ends
    " \n\nHuman: hi there\n\nAssistant: hello",
])
def test_parse_transcript_reads_common_copies(text):
    assert parse_hh_transcript(text) == [{"role": "user", "content": "hi there"},
                                         {"role": "assistant", "content": "hello"}]


def test_parse_transcript_refuses_single_newlines_with_a_hint():
    with pytest.raises(ValueError, match="blank line"):
        parse_hh_transcript("\nHuman: hi\nAssistant: hello")
    # A marker inside a turn is text, not a turn.
    assert parse_hh_transcript("\n\nHuman: say Human: x\n\nAssistant: ok")[0]["content"] == "say Human: x"


UF_GOOD = {
    "prompt": "Name a color.",
    "chosen": [{"role": "user", "content": "Name a color."}, {"role": "assistant", "content": "Blue."}],
    "rejected": [{"role": "user", "content": "Name a color."}, {"role": "assistant", "content": "Seven."}],
    "score_chosen": 8.0, "score_rejected": 3.0,
}
UF_MULTI = {
    "prompt": "And another?",
    "chosen": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a color."},
               {"role": "assistant", "content": "Blue."}, {"role": "user", "content": "And another?"},
               {"role": "assistant", "content": "Red."}],
    "rejected": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a color."},
                 {"role": "assistant", "content": "Blue."}, {"role": "user", "content": "And another?"},
                 {"role": "assistant", "content": "Blue again, obviously, because..."}],
    "score_chosen": 9, "score_rejected": 2,
}
UF_BAD = [
    ({**UF_GOOD, "rejected": UF_GOOD["rejected"][:1]}, "not the assistant"),
    ({**UF_GOOD, "rejected": [{"role": "user", "content": "Other."}, UF_GOOD["rejected"][1]]}, "different prompts"),
    ({**UF_GOOD, "score_chosen": 1.0}, "below score_rejected"),
    ({**UF_GOOD, "chosen": "Blue."}, "not a non-empty list"),
]


def test_ultrafeedback_fixture(tmp_path):
    path = tmp_path / "uf.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [UF_GOOD, UF_MULTI] + [r for r, _ in UF_BAD]) + "\n")
    loaded = load_ultrafeedback(path)
    assert len(loaded.dataset) == 2
    assert [p.row for p in loaded.problems] == [2, 3, 4, 5]
    for problem, (_, words) in zip(loaded.problems, UF_BAD):
        assert words in problem.reason, (problem, words)
    first, multi = loaded.dataset[0], loaded.dataset[1]
    assert first["prompt"] == [{"role": "user", "content": "Name a color."}]
    assert first["chosen"] == [{"role": "assistant", "content": "Blue."}]
    assert (first["score_chosen"], first["score_rejected"]) == (8.0, 3.0)
    assert [m["role"] for m in multi["prompt"]] == ["system", "user", "assistant", "user"]


# ---------------------------------------------------------------------------
# The real HH-RLHF rows
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_hh_file():
    path = real_data.hh_sample_file()
    if path is None:
        pytest.skip(f"The real HH-RLHF sample ({real_data.HH_SAMPLE_FILE}) is not in ../shared/data beside the "
                    f"checkout; set ${real_data.SHARED_DATA_ENV} to the folder that holds it.")
    return path


def test_real_hh_rows_parse_without_loss(real_hh_file):
    raw = [json.loads(line) for line in real_hh_file.read_text().splitlines() if line.strip()]
    loaded = load_hh_rlhf(real_hh_file)
    assert loaded.rows_read == len(raw) == 40
    # every row converts or is reported, never silently dropped
    assert len(loaded.dataset) + len(loaded.problems) == len(raw)
    assert len(loaded.dataset) >= 38, loaded.summary()
    squash = lambda text: re.sub(r"\s+", " ", text).strip()  # noqa: E731
    multi_turn = 0
    for row in loaded.dataset:
        source = raw[row["row"]]
        turns = source["chosen"].count("\n\nHuman:") + source["chosen"].count("\n\nAssistant:")
        assert len(row["prompt"]) + 1 == turns  # all earlier turns kept
        multi_turn += len(row["prompt"]) > 1
        for key in ("chosen", "rejected"):
            rebuilt = "".join(f"\n\n{'Human' if m['role'] == 'user' else 'Assistant'}: {m['content']}"
                              for m in list(row["prompt"]) + list(row[key]))
            assert squash(rebuilt) == squash(source[key])  # nothing lost, nothing invented
    assert multi_turn >= 20


def test_real_hh_rows_from_a_gzipped_file_as_the_dataset_ships_them(real_hh_file, tmp_path):
    packed = tmp_path / "train.jsonl.gz"
    with gzip.open(packed, "wt", encoding="utf-8") as handle:
        handle.write(real_hh_file.read_text(encoding="utf-8"))
    plain, gzipped = load_hh_rlhf(real_hh_file), load_hh_rlhf(packed)
    assert gzipped.rows_read == plain.rows_read == 40
    assert list(gzipped.dataset) == list(plain.dataset)


def test_real_hh_through_a_chat_template(real_hh_file):
    """The converted rows are what TRL's trainers take: a chat template renders every turn."""
    from rlhf_lab.stages.pretrain import CHAT_TEMPLATE, SPECIAL_TOKENS, train_tokenizer

    tokenizer = train_tokenizer(["hello world"] * 10, 300)
    assert tokenizer.chat_template == CHAT_TEMPLATE
    dataset = load_hh_rlhf(real_hh_file).dataset
    chosen = real_data.conversation_texts(tokenizer, dataset, "chosen")
    for text, row in zip(chosen, dataset):
        assert text.count(SPECIAL_TOKENS["user"]) == sum(m["role"] == "user" for m in row["prompt"])
        assert text.endswith(row["chosen"][0]["content"] + SPECIAL_TOKENS["end"])
    train, test = real_data.train_test_split(load_hh_rlhf(real_hh_file), test_fraction=0.25)
    assert len(train) + len(test) == len(dataset) and set(train["row"]).isdisjoint(test["row"])


def test_shared_data_dir_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv(real_data.SHARED_DATA_ENV, str(tmp_path / "absent"))
    assert real_data.shared_data_dir() is None and real_data.hh_sample_file() is None
    monkeypatch.setenv(real_data.SHARED_DATA_ENV, str(tmp_path))
    assert real_data.shared_data_dir() == tmp_path
