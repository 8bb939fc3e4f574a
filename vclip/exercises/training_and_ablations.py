"""Checkers for chapter 04 (the teaching run, zero-shot retrieval views and the ablations).

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 5.5 and Table 7 (the ablations); reference
``projects/retri/videoclip/test_youcook_zs.yaml`` (the headline retrieval). Answers are graded against the
package's result: the committed ablation benchmark's runs (``benchmarks/ablations.py``, its paired
differences and t-intervals, :func:`vclip.synthetic.measure.t_half_width`) and the world's evaluation
annotations with their truth (:func:`vclip.synthetic.load_truth`).

* :func:`check_paired_difference` (04.1): the mean paired difference of a condition to the paper's recipe;
* :func:`check_interval_half_width` (04.2): its 95% t-interval's half width;
* :func:`check_chance_recall` (04.3): the chance R@k of a retrieval view.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vclip.exercises import Feedback, compare_number
from vclip.synthetic import measure

__all__ = ["chance_r1", "chance_recall", "check_chance_recall", "check_interval_half_width", "check_paired_difference",
           "paired_differences", "view_candidates"]

CHANCE_VIEWS = ("youcook2", "youcook2_within_video", "youcook2_same_step")


def paired_differences(result: dict, view: str, condition: str) -> np.ndarray:
    """R@1 of ``condition`` minus the paper recipe's, one value per seed both have, on ``view``."""
    by = {(r["condition"], r["seed"]): r["R@1"] for r in result["runs"] if r["task"] == view}
    seeds = sorted({s for c, s in by if c == "paper"} & {s for c, s in by if c == condition})
    if not seeds:
        raise ValueError(f"paired_differences: no seed has both 'paper' and {condition!r} on {view!r}")
    return np.array([by[condition, s] - by["paper", s] for s in seeds])


def check_paired_difference(answer, result: dict, view: str = "youcook2_same_step",
                            condition: str = "no_retrieval") -> Feedback:
    """04.1: mean over seeds of (``condition`` minus paper) R@1 on ``view``, in points."""
    expected = float(paired_differences(result, view, condition).mean())
    return compare_number("04.1", f"your mean paired difference ({condition} minus paper, {view})", answer,
                          expected, "the benchmark's runs", tolerance=0.05)


def check_interval_half_width(answer, result: dict, view: str = "youcook2_same_step",
                              condition: str = "no_retrieval") -> Feedback:
    """04.2: the half width of the 95% t-interval of that paired difference, in points."""
    expected = measure.t_half_width(paired_differences(result, view, condition))
    return compare_number("04.2", f"your 95% half width ({condition} minus paper, {view})", answer, expected,
                          "vclip.synthetic.measure.t_half_width on the benchmark's runs", tolerance=0.05)


def view_candidates(data_dir: str | Path) -> dict[str, np.ndarray]:
    """For each view of :data:`CHANCE_VIEWS`, how many clips each of its texts is ranked against (its own
    clip included), as :func:`vclip.synthetic.measure.retrieval_views` builds the view."""
    from vclip.data.truth import load_truth
    from vclip.tasks import load_task_data

    folder = Path(data_dir) / "youcook2"
    data, truth = load_task_data("youcook2", folder), load_truth(folder)
    videos = np.asarray([key[0] for key in data.keys])
    steps = np.asarray([truth.text_steps[r] for r in data.rows])
    shown = np.asarray([truth.clip_step(*key) for key in data.keys])
    within = np.array([(videos == videos[i]).sum() for i in range(len(videos))])
    rivals = np.array([(~(videos == videos[i]) & (shown == steps[i])).sum() for i in range(len(videos))])
    return {"youcook2": np.full(len(videos), len(videos)), "youcook2_within_video": within,
            "youcook2_same_step": 1 + rivals[rivals > 0]}


def chance_recall(candidates: np.ndarray, k: int = 1) -> float:
    """Expected R@k (percent) of a scorer that ranks at random: the mean of min(k, n) / n over the texts,
    each ranked against n clips (``candidates``)."""
    n = np.asarray(candidates, dtype=float)
    return 100.0 * float(np.mean(np.minimum(k, n) / n))


def chance_r1(candidates: np.ndarray) -> float:
    """Expected R@1 (percent) of a random ranking: the mean of 1 / (number of candidates)."""
    return chance_recall(candidates, 1)


def check_chance_recall(answer, data_dir: str | Path, view: str = "youcook2_within_video", k: int = 5) -> Feedback:
    """04.3: the R@k (percent) a random ranking gets on ``view`` of the world in ``data_dir``."""
    if view not in CHANCE_VIEWS:
        raise ValueError(f"check_chance_recall: view must be one of {CHANCE_VIEWS}, got {view!r}")
    expected = chance_recall(view_candidates(data_dir)[view], k)
    return compare_number("04.3", f"your chance R@{k} on {view}", answer, expected,
                          "the world's annotations and truth", tolerance=0.05)
