"""The shared grading helpers of vclip.exercises: right answers pass, wrong ones say what is wrong."""

import math

from vclip.exercises import Feedback, compare_number, compare_set, predict_then_reveal


def test_compare_number_passes_within_tolerance_and_names_the_source():
    ok = compare_number("06.1", "your R@1", 12.5, 12.5, "vclip.metrics")
    assert ok.passed and "12.5" in ok.message and str(ok).startswith("\u2713")
    near = compare_number("06.1", "your R@1", 12.49, 12.5, "vclip.metrics", tolerance=0.05)
    assert near.passed


def test_compare_number_says_how_far_off():
    bad = compare_number("03.2", "your false-negative count for group 3", 14, 11, "the world's truth")
    assert not bad.passed and not bool(bad)
    assert "14" in bad.message and "11" in bad.message and "off by 3" in bad.message
    assert str(bad).startswith("\u2717")


def test_compare_number_unanswered_and_nonsense():
    assert "no answer yet" in compare_number("x", "n", None, 1.0, "truth").message
    assert "finite number" in compare_number("x", "n", "eleven", 1.0, "truth").message
    assert not compare_number("x", "n", math.nan, 1.0, "truth").passed


def test_compare_set_lists_missing_and_extra():
    fb = compare_set("03.1", "your same-task pairs", {1, 2, 9}, {1, 2, 3}, "the world's truth")
    assert not fb.passed and "missing 1: 3" in fb.message and "9" in fb.message
    assert compare_set("03.1", "pairs", [3, 2, 1], {1, 2, 3}, "truth").passed
    assert "collection" in compare_set("03.1", "pairs", 5, {1}, "truth").message


def test_predict_then_reveal():
    no_guess = predict_then_reveal("the untrained loss", None, 4.16, close=0.4)
    assert not no_guess.passed and "4.16" in no_guess.message
    good = predict_then_reveal("the untrained loss", 4.0, 4.16, close=0.4)
    assert good.passed and "close" in good.message
    far = predict_then_reveal("the untrained loss", 1.0, 4.16, close=0.4)
    assert not far.passed and "not close" in far.message
    assert isinstance(far, Feedback)
