"""The label store: append-only, durable, resumable, safe with two writers, strict on bad files.
Also the conversion of labels to TRL's preference format and the agreement statistics."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import textwrap
import warnings
from dataclasses import dataclass

import pytest

from rlhf_lab.label import (LabelStore, MalformedLabelFile, TruncatedLineWarning, agreement, choices_by_pair,
                            cohen_kappa, merge_with_simulated, to_preference_dataset)


@dataclass(frozen=True)
class Pair:
    pair_id: str
    prompt: str
    response_a: str
    response_b: str
    family: str = "helpful"


def make_pairs(n, size=10):
    return [Pair(f"p{i:03d}", f"question {i}?", f"answer a{i} " + "x" * size, f"answer b{i} " + "y" * size)
            for i in range(n)]


def decide(store, pair, choice, shown_left="a", tags=(), annotator="learner"):
    return store.record_decision(pair, shown_left=shown_left, choice=choice, tags=tags, annotator=annotator)


# ---------------------------------------------------------------- writing and reading
def test_decision_record_has_every_field_and_side(tmp_path):
    store = LabelStore(tmp_path / "labels.jsonl")
    pair = make_pairs(1)[0]
    decide(store, pair, "a", shown_left="b", tags=["honest", "helpful"])
    (record,) = store.records()
    assert record["kind"] == "decision" and record["pair_id"] == "p000"
    assert record["prompt"] == "question 0?" and record["family"] == "helpful"
    assert record["response_a"] == pair.response_a and record["response_b"] == pair.response_b
    assert record["shown_left"] == "b" and record["choice"] == "a"
    assert record["chosen_side"] == "right"  # a was shown on the right
    assert record["tags"] == ["helpful", "honest"] and record["annotator"] == "learner"
    assert record["time"].endswith("+00:00") and len(record["record_id"]) == 32


def test_invalid_choice_tag_or_side_is_refused_and_nothing_written(tmp_path):
    store = LabelStore(tmp_path / "labels.jsonl")
    pair = make_pairs(1)[0]
    with pytest.raises(ValueError, match="choice='c'"):
        decide(store, pair, "c")
    with pytest.raises(ValueError, match="Unknown tag"):
        decide(store, pair, "a", tags=["funny"])
    with pytest.raises(ValueError, match="shown_left"):
        decide(store, pair, "a", shown_left="left")
    assert not store.path.exists()


def test_every_append_is_fsynced_before_it_returns(tmp_path, monkeypatch):
    store = LabelStore(tmp_path / "labels.jsonl")
    synced_sizes = []
    real_fsync = os.fsync

    def spy_fsync(fd):
        real_fsync(fd)
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode):  # the file itself (the new file's directory is synced too)
            synced_sizes.append(info.st_size)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    for i, pair in enumerate(make_pairs(3)):
        decide(store, pair, "a")
        # The file's bytes were synced, and the synced size is the size on disk now.
        assert store.path.stat().st_size in synced_sizes
    assert len(synced_sizes) == 3


def test_appending_never_rewrites_earlier_bytes(tmp_path):
    store = LabelStore(tmp_path / "labels.jsonl")
    pairs = make_pairs(4)
    decide(store, pairs[0], "a")
    before = store.path.read_bytes()
    decide(store, pairs[1], "b")
    store.record_undo(store.records()[0])
    after = store.path.read_bytes()
    assert after.startswith(before) and len(after.splitlines()) == 3


# ---------------------------------------------------------------- undo
def test_undo_is_a_new_record_and_removes_the_decision_from_active(tmp_path):
    store = LabelStore(tmp_path / "labels.jsonl")
    pairs = make_pairs(3)
    first = decide(store, pairs[0], "a")
    second = decide(store, pairs[1], "b")
    store.record_undo(second)
    records = store.records()
    assert [r["kind"] for r in records] == ["decision", "decision", "undo"]
    assert records[2]["undoes"] == second["record_id"]
    assert [d["record_id"] for d in store.active_decisions()] == [first["record_id"]]
    # Labelling the same pair again: only the newest decision is active.
    again = decide(store, pairs[1], "tie")
    assert [d["record_id"] for d in store.active_decisions()] == [first["record_id"], again["record_id"]]


def test_active_decisions_keep_the_latest_per_annotator_and_pair(tmp_path):
    store = LabelStore(tmp_path / "labels.jsonl")
    pair = make_pairs(1)[0]
    decide(store, pair, "a", annotator="ann")
    decide(store, pair, "b", annotator="bob")
    decide(store, pair, "tie", annotator="ann")
    assert {(d["annotator"], d["choice"]) for d in store.active_decisions()} == {("ann", "tie"), ("bob", "b")}
    assert [d["choice"] for d in store.active_decisions(annotator="bob")] == ["b"]


# ---------------------------------------------------------------- crashes and bad files
def write_records(store, n):
    return [decide(store, pair, "a") for pair in make_pairs(n)]


def test_truncated_last_line_is_skipped_with_a_warning_naming_it(tmp_path):
    store = LabelStore(tmp_path / "labels.jsonl")
    write_records(store, 3)
    with open(store.path, "ab") as f:  # the kernel died halfway through line 4
        f.write(b'{"kind": "decision", "pair_id": "p0')
    with pytest.warns(TruncatedLineWarning, match="line 4 is cut off"):
        loaded = store.load()
    assert loaded.truncated_line == 4 and len(loaded.records) == 3


def test_next_append_after_a_torn_line_closes_it_and_all_labels_load(tmp_path):
    store = LabelStore(tmp_path / "labels.jsonl")
    write_records(store, 3)
    with open(store.path, "ab") as f:
        f.write(b'{"kind": "deci')
    torn_bytes = store.path.read_bytes()
    new = decide(store, Pair("p9", "q", "x", "y"), "b")
    assert store.path.read_bytes().startswith(torn_bytes)  # the torn bytes stay, untouched
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a closed torn line is known: no warning any more
        records = store.records()
    assert len(records) == 4 and records[-1]["record_id"] == new["record_id"]
    # A second crash later is again reported with its own line number.
    with open(store.path, "ab") as f:
        f.write(b"{")
    with pytest.warns(TruncatedLineWarning, match="line 7 is cut off"):
        assert len(store.records()) == 4


def test_a_whole_last_record_without_newline_loads_and_is_kept(tmp_path):
    store = LabelStore(tmp_path / "labels.jsonl")
    write_records(store, 2)
    store.path.write_bytes(store.path.read_bytes().rstrip(b"\n"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(store.records()) == 2
    write_records(store, 1)
    assert len(store.records()) == 3 and len(store.path.read_bytes().splitlines()) == 3


@pytest.mark.parametrize("bad_line", [b"not json at all", b'{"kind": "decision"}', b"[1, 2]", b'{"kind": "vote"}'])
def test_malformed_middle_line_is_an_error_with_its_number_and_nothing_is_rewritten(tmp_path, bad_line):
    store = LabelStore(tmp_path / "labels.jsonl")
    write_records(store, 3)
    lines = store.path.read_bytes().splitlines(keepends=True)
    store.path.write_bytes(lines[0] + bad_line + b"\n" + b"".join(lines[1:]))
    original = store.path.read_bytes()
    with pytest.raises(MalformedLabelFile, match=r"line 2 is not a valid label record.*was not changed"):
        store.records()
    from rlhf_lab.label import LabelingApp

    with pytest.raises(MalformedLabelFile, match="line 2"):
        LabelingApp(make_pairs(3), store)
    assert store.path.read_bytes() == original


def test_writer_killed_mid_run_loses_no_acknowledged_label(tmp_path):
    """A real process appends labels and prints each id once append() returned; we SIGKILL it.
    Every acknowledged label must load (the last line may be torn: skipped with a warning)."""
    path = tmp_path / "labels.jsonl"
    writer = textwrap.dedent(f"""
        import sys
        from dataclasses import dataclass
        from rlhf_lab.label import LabelStore
        @dataclass(frozen=True)
        class Pair:
            pair_id: str; prompt: str; response_a: str; response_b: str
        store = LabelStore({str(path)!r})
        for i in range(100000):
            r = store.record_decision(Pair(f"p{{i}}", "q", "a" * 5000, "b" * 5000), shown_left="a", choice="a")
            print(r["record_id"], flush=True)
    """)
    process = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    acknowledged = [process.stdout.readline().strip() for _ in range(60)]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    acknowledged += [line.strip() for line in process.stdout.read().splitlines() if line.strip()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncatedLineWarning)
        loaded = {r["record_id"] for r in LabelStore(path).records()}
    assert len(acknowledged) >= 60
    assert set(acknowledged) <= loaded


# ---------------------------------------------------------------- two writers on one file
def _writer(path, writer_id, n):
    store = LabelStore(path)
    for i in range(n):
        # Big records (~40 kB) so that an unlocked write would be split into several write() calls.
        pair = Pair(f"w{writer_id}-{i}", "q", f"{writer_id}" * 20000, "z" * 20000)
        store.record_decision(pair, shown_left="a", choice="a", annotator=f"writer{writer_id}")


def test_concurrent_writer_processes_neither_interleave_nor_lose_records(tmp_path):
    path = tmp_path / "labels.jsonl"
    n_writers, n_each = 4, 40
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_writer, args=(path, w, n_each)) for w in range(n_writers)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=120)
        assert p.exitcode == 0
    lines = path.read_bytes().splitlines()
    assert len(lines) == n_writers * n_each
    records = [json.loads(line) for line in lines]  # every line is one whole record
    for w in range(n_writers):
        mine = [r for r in records if r["annotator"] == f"writer{w}"]
        assert [r["pair_id"] for r in mine] == [f"w{w}-{i}" for i in range(n_each)]
        assert all(r["response_a"] == f"{w}" * 20000 for r in mine)


def test_a_writer_waits_while_another_holds_the_file_lock(tmp_path):
    """On Linux one write() per record is rarely split, so the test above may pass even without
    a lock; this one checks directly that a writer does not write while the lock is held."""
    from filelock import FileLock

    path = tmp_path / "labels.jsonl"
    writer = textwrap.dedent(f"""
        from dataclasses import dataclass
        from rlhf_lab.label import LabelStore
        @dataclass(frozen=True)
        class Pair:
            pair_id: str; prompt: str; response_a: str; response_b: str
        store = LabelStore({str(path)!r})
        print("ready", flush=True)
        store.record_decision(Pair("p0", "q", "a", "b"), shown_left="a", choice="a")
        print("written", flush=True)
    """)
    with FileLock(str(path) + ".lock"):
        process = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "ready"
        try:
            process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        assert process.poll() is None and not path.exists()  # blocked on the lock, nothing written
    assert process.stdout.readline().strip() == "written"
    assert process.wait(timeout=30) == 0
    assert [r["pair_id"] for r in LabelStore(path).records()] == ["p0"]


# ---------------------------------------------------------------- preference data
def test_preference_dataset_keeps_a_and_b_drops_ties_skips_and_undone(tmp_path):
    store = LabelStore(tmp_path / "labels.jsonl")
    pairs = make_pairs(5)
    decide(store, pairs[0], "a")
    decide(store, pairs[1], "b", shown_left="b")
    decide(store, pairs[2], "tie")
    decide(store, pairs[3], "skip")
    undone = decide(store, pairs[4], "a")
    store.record_undo(undone)
    decide(store, pairs[0], "a", annotator="someone else")
    data = to_preference_dataset(store)
    assert data.column_names == ["prompt", "chosen", "rejected"]
    assert data.to_list() == [
        {"prompt": "question 0?", "chosen": pairs[0].response_a, "rejected": pairs[0].response_b},
        {"prompt": "question 1?", "chosen": pairs[1].response_b, "rejected": pairs[1].response_a},
    ]
    assert len(to_preference_dataset(store, annotator=None)) == 3
    assert to_preference_dataset(store, with_metadata=True).column_names == [
        "prompt", "chosen", "rejected", "family", "source"]


def test_merge_with_simulated_labels_from_the_world(tmp_path):
    from rlhf_lab.world import World

    world = World()
    store = LabelStore(tmp_path / "labels.jsonl")
    pairs = world.comparison_pairs(6, seed=0)
    for pair, choice in zip(pairs, ["a", "b", "tie", "a", "skip", "b"]):
        decide(store, pair, choice)
    merged = merge_with_simulated(store, world, n_simulated=10, seed=0)
    assert len(merged) == 4 + 10
    assert merged["source"].count("learner") == 4 and merged["source"].count("simulated") == 10
    learner_rows = [r for r in merged.to_list() if r["source"] == "learner"]
    assert {r["prompt"] for r in learner_rows} == {p.prompt.text for p, c in zip(pairs, "ab-a-b") if c != "-"}
    assert {r["family"] for r in merged.to_list()} <= {"helpful", "harmful", "benign", "sycophancy"}
    again = merge_with_simulated(store, world, n_simulated=10, seed=0)
    assert again.to_list() == merged.to_list()  # the shuffle is seeded


# ---------------------------------------------------------------- agreement
def test_cohen_kappa_matches_a_hand_computation():
    first = ["a", "a", "b", "b", "tie"]
    second = ["a", "b", "b", "b", "tie"]
    # observed 4/5; chance (2*1 + 2*3 + 1*1) / 25 = 0.36; kappa = (0.8 - 0.36) / 0.64
    assert cohen_kappa(first, second) == pytest.approx(0.6875)
    assert cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)
    assert math.isnan(cohen_kappa([], []))
    assert math.isnan(cohen_kappa(["a", "a"], ["a", "a"]))  # chance agreement is already 1


def test_agreement_leaves_out_skips_and_unshared_pairs_and_splits_by_family():
    mine = {"p1": "a", "p2": "b", "p3": "skip", "p4": "tie", "p5": "a"}
    theirs = {"p1": "a", "p2": "a", "p3": "a", "p4": "tie", "p6": "b"}
    families = {"p1": "helpful", "p2": "sycophancy", "p3": "harmful", "p4": "helpful"}
    result = agreement(mine, theirs, families)
    assert result.n == 3 and result.raw == pytest.approx(2 / 3)
    assert result.disagreements == ["p2"]
    assert result.by_family == {"helpful": (2, 2), "sycophancy": (0, 1)}
    assert result.kappa == pytest.approx(cohen_kappa(["a", "b", "tie"], ["a", "a", "tie"]))
    assert "agreed on 2 of 3 pairs (67%)" in result.summary()
    with pytest.raises(ValueError, match="'maybe'"):
        agreement({"p1": "maybe"}, {"p1": "a"})


def test_agreement_between_two_annotators_stores(tmp_path):
    pairs = make_pairs(4)
    store_1, store_2 = LabelStore(tmp_path / "one.jsonl"), LabelStore(tmp_path / "two.jsonl")
    for pair, c1, c2 in zip(pairs, "aabt", "abbt"):
        decide(store_1, pair, {"t": "tie"}.get(c1, c1), annotator="one")
        decide(store_2, pair, {"t": "tie"}.get(c2, c2), annotator="two")
    result = agreement(choices_by_pair(store_1.active_decisions()), choices_by_pair(store_2.active_decisions()))
    assert result.n == 4 and result.raw == pytest.approx(0.75) and result.disagreements == ["p001"]
    with pytest.raises(ValueError, match="several annotators"):
        decide(store_1, pairs[0], "b", annotator="three")
        choices_by_pair(store_1.active_decisions())
