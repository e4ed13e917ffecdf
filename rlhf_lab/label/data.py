"""From labels to training data, in TRL's preference format (prompt, chosen, rejected).

A decision "a" means response_a is chosen and response_b rejected, and so on. Ties and
skips carry no preference, so they are left out; undone decisions are already gone
(store.active_decisions). The prompt is the user's text, as in world.preference_dataset.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ..world import preference_row
from .store import LabelStore

if TYPE_CHECKING:  # datasets is imported lazily: it is slow to import
    from datasets import Dataset

PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")
METADATA_COLUMNS = ("family", "source")


def preference_rows(decisions: list[dict], source: str = "learner") -> list[dict]:
    """Rows {prompt, chosen, rejected, family, source} from decision records; ties and skips dropped."""
    return [preference_row(d["prompt"], d["response_a"], d["response_b"], d["choice"], d.get("family") or "unknown",
                           source=source)
            for d in decisions if d["choice"] in ("a", "b")]


def _to_dataset(rows: list[dict], with_metadata: bool) -> "Dataset":
    from datasets import Dataset

    columns = PREFERENCE_COLUMNS + (METADATA_COLUMNS if with_metadata else ())
    return Dataset.from_dict({column: [row[column] for row in rows] for column in columns})


def to_preference_dataset(store: LabelStore | str, annotator: str | None = "learner",
                          with_metadata: bool = False) -> "Dataset":
    """The store's active decisions as a datasets.Dataset with prompt, chosen, rejected
    (plus family and source when with_metadata=True). annotator=None takes everyone's."""
    store = store if isinstance(store, LabelStore) else LabelStore(store)
    rows = preference_rows(store.active_decisions(annotator=annotator))
    return _to_dataset(rows, with_metadata)


def merge_with_simulated(store: LabelStore | str, world, n_simulated: int, *, annotator: str | None = "learner",
                         simulated_annotator=None, split: str = "train", seed: int = 0,
                         with_metadata: bool = True) -> "Dataset":
    """The learner's labels plus n_simulated pairs labelled by a simulated annotator
    (world.preference_dataset), shuffled together with `seed`. Column "source" says
    which is which ("learner" or "simulated")."""
    store = store if isinstance(store, LabelStore) else LabelStore(store)
    rows = preference_rows(store.active_decisions(annotator=annotator))
    if n_simulated > 0:
        simulated = world.preference_dataset(n_simulated, split=split, annotator=simulated_annotator, seed=seed)
        rows += [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"],
                  "family": r.get("family") or "unknown", "source": "simulated"} for r in simulated]
    random.Random(seed).shuffle(rows)
    return _to_dataset(rows, with_metadata)
