"""Chapter 04's checkers (vclip.exercises.training_and_ablations), graded against the committed benchmark's runs
and the synthetic world's annotations: a right answer passes, a wrong one fails naming both numbers."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from vclip.exercises.training_and_ablations import (
    chance_r1,
    check_chance_recall,
    check_interval_half_width,
    check_paired_difference,
    view_candidates,
)
from vclip.tasks import evaluate_baselines, load_task_data

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def result():
    return json.loads((REPO / "benchmarks" / "results" / "ablations.json").read_text())


def _worked_differences(result):  # the notebook's worked solution
    by = {(r["condition"], r["seed"]): r["R@1"] for r in result["runs"] if r["task"] == "youcook2_same_step"}
    seeds = sorted(s for c, s in by if c == "paper")
    return np.array([by["no_retrieval", s] - by["paper", s] for s in seeds])


def test_paired_difference_matches_the_benchmark_summary(result):
    worked = _worked_differences(result).mean()
    summary = result["summary"]["youcook2_same_step"]["no_retrieval"]["R@1"]["minus_paper"]["mean"]
    assert worked == pytest.approx(summary)
    assert check_paired_difference(worked, result).passed
    wrong = check_paired_difference(-worked, result)
    assert not wrong.passed and f"{-worked:.4g}" in wrong.message and f"{worked:.4g}" in wrong.message


def test_interval_half_width(result):
    d = _worked_differences(result)
    worked = 2.776 * d.std(ddof=1) / math.sqrt(len(d))  # t(0.975, 4) from a table
    assert check_interval_half_width(worked, result).passed
    wrong = check_interval_half_width(1.96 * d.std(ddof=0) / math.sqrt(len(d)), result)  # normal quantile, population sd
    assert not wrong.passed and "off by" in wrong.message


def test_chance_recall_against_the_annotations(synthetic_world):
    data = load_task_data("youcook2", synthetic_world / "youcook2")
    videos = [key[0] for key in data.keys]
    n = np.array([videos.count(v) for v in videos])
    worked = 100 * np.mean(np.minimum(5, n) / n)
    assert check_chance_recall(worked, synthetic_world, view="youcook2_within_video", k=5).passed
    r1 = 100 * np.mean(1 / n)
    wrong = check_chance_recall(r1, synthetic_world, view="youcook2_within_video", k=5)
    assert not wrong.passed and f"{r1:.4g}" in wrong.message and f"{worked:.4g}" in wrong.message
    with pytest.raises(ValueError, match="view must be one of"):
        check_chance_recall(1.0, synthetic_world, view="msrvtt")


def test_headline_chance_equals_the_package_baseline(synthetic_world):
    chance = evaluate_baselines("youcook2", synthetic_world)["chance"].metrics["R@1"]
    assert chance_r1(view_candidates(synthetic_world)["youcook2"]) == pytest.approx(chance, abs=0.05)
