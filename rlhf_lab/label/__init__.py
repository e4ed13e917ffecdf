"""Labelling preferences by hand: the widget (an anywidget whose actions reach the kernel as
numbered messages), the append-only store, agreement statistics, the conversion of labels into
TRL's preference format, and a reward model trained on your labels alone (label.yours).

    from rlhf_lab.label import LabelingApp
    app = LabelingApp.for_world(store_path="labels/my_labels.jsonl", n_pairs=20)
    app
"""

from .agreement import Agreement, agreement, choices_by_pair, cohen_kappa
from .app import LabelingApp
from .data import merge_with_simulated, preference_rows, to_preference_dataset
from .scripted import scripted_labelling
from .store import (CHOICES, TAGS, LabelStore, MalformedLabelFile, TruncatedLineWarning,
                    active_decisions)

__all__ = [
    "Agreement", "agreement", "choices_by_pair", "cohen_kappa", "LabelingApp", "merge_with_simulated",
    "preference_rows", "to_preference_dataset", "CHOICES", "TAGS", "LabelStore", "MalformedLabelFile",
    "TruncatedLineWarning", "active_decisions", "scripted_labelling",
]
