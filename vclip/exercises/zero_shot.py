"""Checkers of chapter 06 (zero-shot evaluation): each grades an answer against the package's result.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (zero-shot transfer). Reference: fairseq ``examples/MMPT``,
``mmpt/evaluators/metric.py`` (``RetrievalMetric``, ``DiDeMoMetric``), reproduced by :mod:`vclip.metrics`.

* 06.1 :func:`check_chance_recall` - the exact chance R@K of text->video retrieval over N candidates;
* 06.2 :func:`check_chance_spread` - how far one draw of DiDeMo's chance rank@1 moves with its seed;
* 06.3 :func:`check_first_chunk_rank1` - DiDeMo rank@1 of the fixed scorer "always the first chunk".

A checker returns a :class:`vclip.exercises.Feedback`; an answer left as ``None`` gets the "no answer yet"
line without anything being computed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vclip.exercises import Feedback, compare_number, not_answered

__all__ = ["check_chance_recall", "check_chance_spread", "check_first_chunk_rank1", "chance_spread",
           "first_chunk_rank1"]


def check_chance_recall(answer, data_dir, task: str = "msrvtt", k: int = 5) -> Feedback:
    """06.1: chance R@``k`` (percent) of ``task``'s text->video retrieval, exactly: a random scorer puts the
    positive at each of the N ranks with probability 1/N, so R@K = 100 K / N (N: the evaluated sentences)."""
    name = f"your chance R@{k} for {task}"
    if answer is None:
        return not_answered("06.1", name)
    from vclip.tasks import load_task_data
    from vclip.tasks.common import EvalConfig

    n = len(load_task_data(task, Path(data_dir) / task, EvalConfig(progress=False)).rows)
    return compare_number("06.1", name, answer, 100.0 * k / n, f"100 x {k} / N with N = {n} candidates",
                          tolerance=0.05)


def chance_spread(data_dir, seeds=range(10)) -> float:
    """The largest minus the smallest DiDeMo chance rank@1 over one-draw baselines with the given seeds."""
    from vclip.tasks import evaluate_baselines
    from vclip.tasks.common import EvalConfig

    draws = [evaluate_baselines("didemo", Path(data_dir) / "didemo",
                                EvalConfig(progress=False, baseline_repeats=1, baseline_seed=s))["chance"].metrics["rank@1"]
             for s in seeds]
    return float(max(draws) - min(draws))


def check_chance_spread(answer, data_dir, seeds=range(10)) -> Feedback:
    """06.2: the spread (max - min, percentage points) of DiDeMo's one-draw chance rank@1 over ``seeds``."""
    name = "your spread of DiDeMo's chance rank@1 over seeds 0-9"
    if answer is None:
        return not_answered("06.2", name)
    return compare_number("06.2", name, answer, chance_spread(data_dir, seeds),
                          "vclip.tasks.evaluate_baselines (baseline_repeats=1) over those seeds", tolerance=0.05)


def first_chunk_rank1(data_dir) -> float:
    """DiDeMo rank@1 (percent) of the fixed scorer that ranks the 21 moments in their listed order
    (``-np.arange(21)``: the first chunk first, no ties), by :func:`vclip.metrics.didemo_metrics`."""
    from vclip.metrics import DIDEMO_MOMENTS, didemo_metrics
    from vclip.tasks import load_task_data
    from vclip.tasks.common import EvalConfig

    data = load_task_data("didemo", Path(data_dir) / "didemo", EvalConfig(progress=False))
    valid = data.valid()
    scores = np.broadcast_to(-np.arange(len(DIDEMO_MOMENTS), dtype=float), valid.shape)
    return didemo_metrics(scores, data.times, valid)["rank@1"]


def check_first_chunk_rank1(answer, data_dir) -> Feedback:
    """06.3: rank@1 (percent) of "always the first chunk"."""
    name = "your rank@1 of 'always the first chunk'"
    if answer is None:
        return not_answered("06.3", name)
    return compare_number("06.3", name, answer, first_chunk_rank1(data_dir),
                          "vclip.metrics.didemo_metrics on the annotators' times", tolerance=0.05)
