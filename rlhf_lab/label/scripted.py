"""A scripted learner: labels the widget's pairs the way a person would, through the same
messages the browser sends. Notebook 03 runs unattended in CI with it (RLHF_LAB_AUTOLABEL=1)."""

from __future__ import annotations

import uuid

FAMILY_TAG = {"helpful": "helpful", "sycophancy": "honest", "harmful": "harmless", "benign": "helpful"}


def scripted_labelling(app, annotator, max_labels: int | None = None) -> int:
    """Label the open pairs of ``app`` (all of them, or the first ``max_labels``) as ``annotator``
    (a world.SimulatedAnnotator) would: a tag for the prompt's family, then the side it prefers
    (Tie when both responses are worth the same to it). Each decision is sent the way the
    browser sends one, a message with a sequence number (app.handle_message).
    Returns the number of decisions made."""
    client = f"scripted-{uuid.uuid4().hex[:8]}"
    made = 0
    while not app.done and (max_labels is None or made < max_labels):
        pair = app.pairs[app.current]
        gap = annotator.utility(pair.prompt, pair.response_a) - annotator.utility(pair.prompt, pair.response_b)
        if abs(gap) < 1e-9:
            side = "tie"
        else:
            choice = annotator.choose(pair)  # "a" or "b", in pair terms
            side = "left" if app.shown_left[str(pair.pair_id)] == choice else "right"
        made += 1
        app.handle_message({"client": client, "seq": made, "action": "choose", "pair_id": str(pair.pair_id),
                            "side": side, "tags": [FAMILY_TAG[pair.prompt.family]]})
    return made
