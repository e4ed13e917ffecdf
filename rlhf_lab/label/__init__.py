"""Labelling preferences by hand: the widget (an anywidget whose actions reach the kernel as
numbered messages), the append-only store, agreement statistics and the conversion of labels
into TRL's preference format. (A reward model trained on your labels alone sits above the
stages, in :mod:`rlhf_lab.your_model`.)

    from rlhf_lab.label import LabelingApp
    app = LabelingApp.for_world(store_path="labels/my_labels.jsonl", n_pairs=20)
    app

The store and the rows (``label.store``, ``label.data``) are the data layer the reward model's
stage reads. The widget is imported only when ``LabelingApp`` is first asked for, so headless
reward training never loads it (nor anywidget and ipywidgets).
"""

from .agreement import Agreement, agreement, choices_by_pair, cohen_kappa
from .data import merge_with_simulated, preference_rows, to_preference_dataset
from .scripted import scripted_labelling
from .store import (CHOICES, TAGS, LabelStore, MalformedLabelFile, TruncatedLineWarning,
                    active_decisions)

__all__ = [
    "Agreement", "agreement", "choices_by_pair", "cohen_kappa", "LabelingApp", "merge_with_simulated",
    "preference_rows", "to_preference_dataset", "CHOICES", "TAGS", "LabelStore", "MalformedLabelFile",
    "TruncatedLineWarning", "active_decisions", "scripted_labelling",
]


def __getattr__(name: str):
    if name == "LabelingApp":
        from .app import LabelingApp  # the widget: anywidget and ipywidgets load here, on first use

        return LabelingApp
    raise AttributeError(f"module 'rlhf_lab.label' has no attribute {name!r}")
