"""Labelling preferences by hand: the widget (an anywidget whose actions reach the kernel as
numbered messages), the append-only store, agreement statistics and the conversion of labels
into TRL's preference format. (A reward model trained on your labels alone sits above the
stages, in :mod:`rlhf_lab.your_model`.)

    from rlhf_lab.label import LabelingApp
    app = LabelingApp.for_world(store_path="labels/my_labels.jsonl", n_pairs=20)
    app

The store and the rows (``label.store``, ``label.data``) are the data layer the reward model's
stage reads; importing them loads no widget. The names below are imported on first use, so
``import rlhf_lab.label.store`` (headless reward training) never imports the widget app.
"""

import importlib

_WHERE = {
    "Agreement": "agreement", "agreement": "agreement", "choices_by_pair": "agreement", "cohen_kappa": "agreement",
    "LabelingApp": "app",
    "merge_with_simulated": "data", "preference_rows": "data", "to_preference_dataset": "data",
    "scripted_labelling": "scripted",
    "CHOICES": "store", "TAGS": "store", "LabelStore": "store", "MalformedLabelFile": "store",
    "TruncatedLineWarning": "store", "active_decisions": "store",
}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'rlhf_lab.label' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)


def __dir__():
    return sorted(list(globals()) + __all__)
