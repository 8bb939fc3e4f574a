"""Checkers of chapter 07 (visual exploration): each grades an answer against the world's truth or the package.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (CrossTask, COIN). Reference: fairseq ``examples/MMPT``,
``mmpt/evaluators/predictor.py`` (``CrossTaskPredictor``, ``COINZSPredictor``), reproduced by
:mod:`vclip.localization` and :mod:`vclip.tasks.coin`.

* 07.1 :func:`check_unordered_steps_found` - CrossTask without the order constraint (each step at its own
  best second): how many annotated steps are found;
* 07.2 :func:`check_missed_steps` - which annotated steps the order-constrained programme misses;
* 07.3 :func:`check_median_threshold` - COIN's rule with the median label-label similarity for lambda:
  the accuracy without background;
* 07.4 :func:`check_shading_recall` - the explorer: the share of a query's own step that stands out.

The CrossTask and COIN checkers take the chapter's ``example`` (:class:`vclip.viz.LocalisationExample`) and
``strip`` (:class:`vclip.viz.SegmentationExample`), whose ``ground_truth`` and ``target`` are the annotations
the synthetic world wrote from its truth.
"""

from __future__ import annotations

import numpy as np

from vclip.exercises import Feedback, compare_number, compare_set, not_answered

__all__ = ["check_median_threshold", "check_missed_steps", "check_shading_recall", "check_unordered_steps_found",
           "median_threshold_no_bg", "missed_steps", "shading_recall", "unordered_steps_found"]


def unordered_steps_found(example) -> int:
    """Annotated steps whose single best second (``argmax`` over the video, no order) lies inside one of
    their annotated segments."""
    truth = np.asarray(example.ground_truth, dtype=bool)
    seconds = np.asarray(example.scores).argmax(axis=0)
    present = truth.any(axis=0)
    return int((truth[seconds, np.arange(truth.shape[1])] & present).sum())


def check_unordered_steps_found(answer, example) -> Feedback:
    """07.1: the count of annotated steps found when each step takes its own best second."""
    return compare_number("07.1", "your count of steps found without the order constraint", answer,
                          unordered_steps_found(example), "example.ground_truth (the annotations)")


def missed_steps(example) -> set[str]:
    """The names of the annotated steps whose second from the order-constrained programme is outside them."""
    truth = np.asarray(example.ground_truth, dtype=bool)
    seconds = np.asarray(example.predicted)
    return {example.steps[k] for k in range(truth.shape[1]) if truth[:, k].any() and not truth[seconds[k], k]}


def check_missed_steps(answer, example) -> Feedback:
    """07.2: the set of annotated step names the programme misses (strings, as in ``example.steps``)."""
    if isinstance(answer, str):
        return Feedback("07.2", False, f"give a collection of step names, e.g. {{'{answer}'}}, not one string")
    return compare_set("07.2", "your missed steps", answer, missed_steps(example),
                       "example.ground_truth (the annotations)")


def median_threshold_no_bg(strip) -> float:
    """COIN frame accuracy without background (percent) when lambda is the median of the off-diagonal
    label-label similarities instead of their maximum."""
    from vclip.metrics import coin_frame_accuracy
    from vclip.tasks.coin import predict_labels

    labels = np.asarray(strip.label_vectors, dtype=np.float64)
    similarity = labels @ labels.T
    median = float(np.median(similarity[~np.eye(len(labels), dtype=bool)]))
    predicted = predict_labels(np.asarray(strip.scores), median)
    return coin_frame_accuracy([predicted], [np.asarray(strip.target)])["frame_acc_no_bg"]


def check_median_threshold(answer, strip) -> Feedback:
    """07.3: the accuracy without background (percent) with the median lambda."""
    if answer is None:
        return not_answered("07.3", "your accuracy without background with the median λ")
    return compare_number("07.3", "your accuracy without background with the median λ", answer,
                          median_threshold_no_bg(strip), "vclip.metrics.coin_frame_accuracy on the annotations",
                          tolerance=0.05)


def shading_recall(search, query: str) -> float:
    """Percent of the query's own step's annotated seconds that stand out in the top-ranked video
    (:func:`vclip.viz.shading_against_truth`)."""
    from vclip.viz import shading_against_truth

    return 100.0 * shading_against_truth(search(query, 1)[0])[0]


def check_shading_recall(answer, search, query: str) -> Feedback:
    """07.4: the recall of the shading (percent) in the top video of ``query``."""
    name = f"your share of {query!r}'s annotated seconds that stand out in its top video"
    if answer is None:
        return not_answered("07.4", name)
    hit = search(query, 1)[0]
    if not hit.captions:
        return Feedback("07.4", False, f"{query!r}: its top video {hit.video_id} has no annotated segment of this step "
                                       "(the world's truth has nothing to grade against); pick a step of the world")
    return compare_number("07.4", name, answer, shading_recall(search, query),
                          f"vclip.viz.shading_against_truth on video {hit.video_id}", tolerance=0.5)
