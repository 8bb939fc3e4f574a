"""The CrossTask dynamic program against brute force, and the sliding windows."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from vclip.localization import (
    average_windows,
    log_softmax,
    order_constrained_dp,
    sliding_windows,
    step_localization,
)


def brute_force(cost: np.ndarray) -> float:
    num_seconds, num_steps = cost.shape
    return min(
        sum(cost[t, k] for k, t in enumerate(seconds))
        for seconds in itertools.combinations(range(num_seconds), num_steps)
    )


@pytest.mark.parametrize("seed", range(30))
def test_dp_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    num_steps = int(rng.integers(1, 5))
    num_seconds = int(rng.integers(num_steps, 9))
    cost = rng.normal(size=(num_seconds, num_steps))
    labels = order_constrained_dp(cost)
    assert labels.shape == cost.shape
    assert (labels.sum(axis=0) == 1).all()  # exactly one second per step
    seconds = labels.argmax(axis=0)
    assert (np.diff(seconds) > 0).all()  # in order, never two steps on one second
    assert float((labels * cost).sum()) == pytest.approx(brute_force(cost))


def test_dp_known_answers():
    cost = np.array([[0.0, 5.0], [1.0, 0.0], [9.0, 9.0]])
    assert order_constrained_dp(cost).argmax(axis=0).tolist() == [0, 1]
    # the cheapest second of step 1 comes before step 0's: the order constraint must win
    cost = np.array([[5.0, 0.0], [0.0, 5.0], [5.0, 5.0]])
    assert order_constrained_dp(cost).argmax(axis=0).tolist() == [1, 2]
    # T == K: the identity is forced
    assert (order_constrained_dp(np.random.default_rng(0).normal(size=(4, 4))) == np.eye(4)).all()


def test_dp_rejects_too_short_video():
    with pytest.raises(ValueError, match="3 ordered steps on 2 seconds"):
        order_constrained_dp(np.zeros((2, 3)))


def test_step_localization_uses_log_softmax_over_steps():
    scores = np.array([[2.0, 0.0], [0.0, 0.1], [0.0, 3.0]])
    assert step_localization(scores).argmax(axis=0).tolist() == [0, 2]
    assert np.allclose(np.exp(log_softmax(scores, axis=1)).sum(axis=1), 1.0)


@pytest.mark.parametrize(
    "num_seconds, expected",
    [
        (10, [(0, 10)]),
        (32, [(0, 32)]),
        (33, [(0, 32), (16, 33)]),
        (48, [(0, 32), (16, 48)]),
        (49, [(0, 32), (16, 48), (32, 49)]),
    ],
)
def test_sliding_windows(num_seconds, expected):
    assert sliding_windows(num_seconds) == expected


def test_average_windows_means_overlaps():
    windows = sliding_windows(40, window=32, stride=16)  # [0, 32), [16, 40)
    scores = [np.ones((32, 2)), 3 * np.ones((24, 2))]
    averaged = average_windows(scores, windows, 40)
    assert averaged[:16].tolist() == [[1.0, 1.0]] * 16
    assert averaged[16:32].tolist() == [[2.0, 2.0]] * 16
    assert averaged[32:].tolist() == [[3.0, 3.0]] * 8
    with pytest.raises(ValueError, match="shape"):
        average_windows([np.ones((31, 2)), np.ones((24, 2))], windows, 40)


def state_chain_dp(cost: np.ndarray) -> np.ndarray:
    """The reference's formulation, frame by frame over a 2K+1 state chain (even = background, odd =
    step), each step state lasting exactly one frame, background free; written independently here."""
    num_seconds, num_steps = cost.shape
    states = 2 * num_steps + 1
    best = np.full((num_seconds + 1, states), np.inf)
    back = np.zeros((num_seconds + 1, states), dtype=int)
    best[0, 0] = 0.0
    for t in range(1, num_seconds + 1):
        for k in range(states):
            options = [k - 1] + ([k] if k % 2 == 0 else [k - 2])
            options = [j for j in options if j >= 0]
            j = min(options, key=lambda j: best[t - 1, j])
            step_cost = cost[t - 1, (k - 1) // 2] if k % 2 == 1 else 0.0
            best[t, k], back[t, k] = best[t - 1, j] + step_cost, j
    k = states - 1 if best[-1, states - 1] < best[-1, states - 2] else states - 2
    labels = np.zeros_like(cost)
    for t in range(num_seconds, 0, -1):
        if k % 2 == 1:
            labels[t - 1, (k - 1) // 2] = 1
        k = back[t, k]
    return labels


@pytest.mark.parametrize("seed", range(10))
def test_dp_equals_the_state_chain_formulation(seed):
    rng = np.random.default_rng(100 + seed)
    cost = rng.normal(size=(int(rng.integers(6, 40)), int(rng.integers(1, 6))))
    np.testing.assert_array_equal(order_constrained_dp(cost), state_chain_dp(cost))
