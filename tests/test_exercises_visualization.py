"""Chapter 07's checkers (vclip.exercises.visualization) on small hand-made examples whose right answers are
counted by hand: right answers pass, wrong ones fail naming both values, unanswered ones say so."""

import numpy as np
import pytest

from vclip.exercises.visualization import (
    check_median_threshold,
    check_missed_steps,
    check_shading_recall,
    check_unordered_steps_found,
    median_threshold_no_bg,
    missed_steps,
    unordered_steps_found,
)
from vclip.metrics import coin_frame_accuracy
from vclip.tasks.coin import predict_labels
from vclip.viz import LocalisationExample, RankedVideo, SegmentationExample


def _crosstask_example() -> LocalisationExample:
    """10 seconds, 3 steps: step 0 annotated at 1-2, step 1 at 5-6, step 2 not annotated."""
    truth = np.zeros((10, 3), dtype=bool)
    truth[1:3, 0] = True
    truth[5:7, 1] = True
    scores = np.full((10, 3), -5.0)
    scores[2, 0] = 0.0  # step 0's best second: 2 (inside its segment)
    scores[0, 1] = 0.0  # step 1's best second: 0 (outside: its annotation is 5-6)
    scores[9, 2] = 0.0
    predicted = np.array([2, 4, 9])  # the ordered programme's seconds: step 0 found, step 1 at 4 (missed)
    return LocalisationExample("v", "t", "Make Toast", ["cut bread", "toast bread", "butter toast"], scores,
                               predicted, truth)


def test_unordered_steps_found():
    example = _crosstask_example()
    assert unordered_steps_found(example) == 1  # step 0 at second 2; step 1 at second 0 misses; step 2 not annotated
    assert check_unordered_steps_found(1, example).passed
    wrong = check_unordered_steps_found(2, example)
    assert not wrong.passed and "is 2;" in wrong.message and "says 1" in wrong.message
    assert "no answer yet" in check_unordered_steps_found(None, example).message


def test_missed_steps():
    example = _crosstask_example()
    assert missed_steps(example) == {"toast bread"}
    assert check_missed_steps({"toast bread"}, example).passed
    wrong = check_missed_steps({"toast bread", "butter toast"}, example)  # a step not annotated is never missed
    assert not wrong.passed and "butter toast" in wrong.message and "2 items" in wrong.message
    assert "not one string" in check_missed_steps("toast bread", example).message
    assert "no answer yet" in check_missed_steps(None, example).message


def _coin_strip() -> SegmentationExample:
    """3 labels; label-label similarities 0.5 (1-2), 0.25 (1-3), 0 (2-3): lambda 0.5, median 0.25."""
    labels = np.array([[1.0, 0.0], [0.5, 0.5], [0.25, -0.25]])
    scores = np.array([[0.6, 0.0, 0.0], [0.3, 0.0, 0.0], [0.0, 0.4, 0.0], [0.1, 0.0, 0.0], [0.0, 0.0, 0.2]])
    target = np.array([1, 1, 2, 0, 3])
    predicted = predict_labels(scores, 0.5)  # only second 0 clears lambda
    return SegmentationExample("c", target, predicted, {1: "a", 2: "b", 3: "c"}, 0.5, scores, labels)


def test_median_threshold():
    strip = _coin_strip()
    # median 0.25: seconds 0, 1, 2 clear it with labels 1, 1, 2 (all right); second 4 (0.2) does not
    by_hand = 100 * 3 / 4  # 4 annotated seconds, 3 labelled right
    assert median_threshold_no_bg(strip) == pytest.approx(by_hand)
    assert median_threshold_no_bg(strip) == pytest.approx(coin_frame_accuracy(
        [predict_labels(strip.scores, 0.25)], [strip.target])["frame_acc_no_bg"])
    assert check_median_threshold(75.0, strip).passed and check_median_threshold(75.04, strip).passed
    wrong = check_median_threshold(25.0, strip)  # the accuracy with lambda itself: 1 of 4
    assert not wrong.passed and "is 25;" in wrong.message and "says 75" in wrong.message
    assert "no answer yet" in check_median_threshold(None, strip).message


def _search(captions):
    z = np.array([0.0, 2.5, 3.0, 0.1, 2.2, 0.0])  # seconds 1, 2 and 4 stand out

    def search(query, k):
        return [RankedVideo("v1", 1.0, np.zeros(6), captions, z=3.0, per_second_z=z)][:k]
    return search


def test_shading_recall():
    search = _search([(1.0, 4.0, "grate the cheese")])  # the step: seconds 1, 2, 3; 1 and 2 stand out
    assert check_shading_recall(100 * 2 / 3, search, "grate the cheese").passed
    wrong = check_shading_recall(50, search, "grate the cheese")
    assert not wrong.passed and "is 50;" in wrong.message and "66.67" in wrong.message
    assert "no answer yet" in check_shading_recall(None, search, "grate the cheese").message
    nothing = check_shading_recall(50, _search([]), "fly to the moon")
    assert not nothing.passed and "no annotated segment" in nothing.message
