"""Sliding windows and the order-constrained dynamic program of CrossTask step localisation.

Paper section 4 (action step localisation, CrossTask); reference ``mmpt/processors/dsprocessor.py``
(``CrossTaskAligner``, ``COINActionSegmentationAligner``: windows of 32 seconds every 16 seconds),
``mmpt/evaluators/predictor.py`` (``CrossTaskPredictor._predict``: per-window frame scores scattered
back to absolute seconds and averaged, then ``dp(Y, -log_softmax(O))``) and the external Cython
``dp.pyx`` of DmZhukov/CrossTask, which this file re-implements in numpy.

The dynamic program (``exactly_one=True``, background cost 0): given a cost ``C[t, k]`` of putting
step k at second t, choose one second per step, ``t_1 < t_2 < ... < t_K`` (the steps in their listed
order, each exactly one second, no two steps on the same second), minimising ``sum_k C[t_k, k]``.
The reference walks a 2K+1 state chain (background / step k) frame by frame; the same optimum is
computed here column by column with a running minimum, ``O(T K)`` in K vectorised numpy passes:

    D_k[t] = min_{t' <= t} ( D_{k-1}[t' - 1] + C[t', k] )     (D_0[-1] = 0)

Ties between equal-cost placements go to the earliest second (the reference's tie order differs in
places; only exactly equal sums are affected).
"""

from __future__ import annotations

import numpy as np


def sliding_windows(num_seconds: int, window: int = 32, stride: int = 16) -> list[tuple[int, int]]:
    """The reference's test-time windows over a video of ``num_seconds`` feature rows.

    Windows start at 0, stride, 2*stride, ...; each is ``[start, min(start + window, T))``; iteration
    stops after the first window that reaches the end of the video (so the last window may be short
    and the tail is never left uncovered).

    Returns:
        list of (start, end) pairs, end exclusive.
    """
    if num_seconds < 1:
        raise ValueError(f"a video needs at least one second of features, got num_seconds={num_seconds}")
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got window={window}, stride={stride}")
    windows = []
    for start in range(0, num_seconds, stride):
        windows.append((start, min(start + window, num_seconds)))
        if num_seconds - start <= window:
            break
    return windows


def average_windows(window_scores: list[np.ndarray], windows: list[tuple[int, int]], num_seconds: int) -> np.ndarray:
    """Scatter per-window, per-second scores back to absolute seconds and average where windows overlap.

    Args:
        window_scores: one (end - start, K) array per window of :func:`sliding_windows`.
        windows: the (start, end) pairs.
        num_seconds: T, the video length in seconds.

    Returns:
        (T, K) float64 mean scores. Every second must be covered by at least one window.
    """
    if len(window_scores) != len(windows) or not windows:
        raise ValueError(f"need one score array per window, got {len(window_scores)} arrays for {len(windows)} windows")
    width = np.shape(window_scores[0])[-1]
    total = np.zeros((num_seconds, width), dtype=np.float64)
    counts = np.zeros((num_seconds, 1), dtype=np.float64)
    for scores, (start, end) in zip(window_scores, windows):
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (end - start, width):
            raise ValueError(f"window [{start}, {end}) needs scores of shape {(end - start, width)}, got {scores.shape}")
        total[start:end] += scores
        counts[start:end] += 1
    if (counts == 0).any():
        raise ValueError(f"seconds {np.flatnonzero(counts[:, 0] == 0)[:5].tolist()} are covered by no window")
    return total / counts


def log_softmax(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable log-softmax (numpy)."""
    scores = np.asarray(scores, dtype=np.float64)
    shifted = scores - scores.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def order_constrained_dp(cost: np.ndarray) -> np.ndarray:
    """Place each of K ordered steps on exactly one of T seconds, in order, at minimum total cost.

    Args:
        cost: (T, K) cost of step k at second t (CrossTask passes ``-log_softmax(scores, axis=1)``).

    Returns:
        (T, K) float32 0/1 labels with exactly one 1 per column, at seconds ``t_1 < ... < t_K``
        minimising ``sum_k cost[t_k, k]``; background (unassigned seconds) costs 0.

    Raises:
        ValueError: if T < K (no ordered one-second-per-step placement exists; the reference's Cython
            returns an arbitrary labelling then), or the costs are not finite.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"cost must be (T, K), got shape {cost.shape}")
    num_seconds, num_steps = cost.shape
    if num_steps == 0:
        return np.zeros(cost.shape, dtype=np.float32)
    if num_seconds < num_steps:
        raise ValueError(f"cannot place {num_steps} ordered steps on {num_seconds} seconds (need T >= K)")
    if not np.isfinite(cost).all():
        raise ValueError("cost holds non-finite values")

    # ending[k][t]: best cost of steps 0..k with step k exactly at second t (inf where impossible).
    # best_by[k][t]: min over t' <= t of ending[k][t'] (step k at or before t).
    ending = np.empty((num_steps, num_seconds))
    best_by = np.empty((num_steps, num_seconds))
    previous = np.zeros(num_seconds)  # best cost of "no step yet" before second t: 0
    for k in range(num_steps):
        ending[k] = previous + cost[:, k]
        ending[k, :k] = np.inf  # k earlier steps need k earlier seconds
        best_by[k] = np.minimum.accumulate(ending[k])
        previous = np.concatenate([[np.inf], best_by[k][:-1]])  # strictly earlier second for step k + 1

    labels = np.zeros((num_seconds, num_steps), dtype=np.float32)
    limit = num_seconds  # the step being traced back must sit before this second
    for k in range(num_steps - 1, -1, -1):
        t = int(np.argmin(ending[k, :limit]))  # first minimum: the earliest second among ties
        labels[t, k] = 1.0
        limit = t
    return labels


def step_localization(frame_scores: np.ndarray) -> np.ndarray:
    """CrossTask's zero-shot decision: log-softmax over the steps per second, then the DP on its negative.

    Args:
        frame_scores: (T, K) per-second, per-step scores (window-averaged dot products).

    Returns:
        (T, K) 0/1 labels, one second per step, in order.
    """
    return order_constrained_dp(-log_softmax(frame_scores, axis=1))
