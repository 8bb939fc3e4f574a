"""vclip.metrics against naive loops and hand-made examples with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vclip.metrics import (
    DIDEMO_MOMENTS,
    coin_frame_accuracy,
    crosstask_recall,
    didemo_metrics,
    moment_iou,
    qa_accuracy,
    retrieval_metrics,
)


def naive_retrieval(sim: np.ndarray) -> dict:
    """A loop written from the definition: sort each row descending, the positive goes after its ties."""
    ranks = []
    for i, row in enumerate(sim):
        order = sorted(range(len(row)), key=lambda j: (-row[j], j == i))  # the positive last among ties
        ranks.append(order.index(i) + 1)
    ranks = np.array(ranks, dtype=float)
    return {
        "R@1": 100 * np.mean(ranks <= 1),
        "R@5": 100 * np.mean(ranks <= 5),
        "R@10": 100 * np.mean(ranks <= 10),
        "MedR": float(np.median(ranks)),
        "MeanR": float(np.mean(ranks)),
        "N": len(ranks),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("tied", [False, True])
def test_retrieval_metrics_equal_naive_loop(seed, tied):
    rng = np.random.default_rng(seed)
    sim = rng.normal(size=(37, 37))
    if tied:  # few distinct values: many exact ties, including with the positive
        sim = rng.integers(0, 3, size=(37, 37)).astype(float)
    sim += 0.5 * np.eye(37) * rng.integers(0, 2, size=37)[:, None]
    got, want = retrieval_metrics(sim), naive_retrieval(sim)
    assert got == pytest.approx(want)


def test_retrieval_metrics_known_values():
    sim = np.array([[3.0, 1.0, 2.0], [5.0, 4.0, 0.0], [1.0, 2.0, 0.0]])
    # ranks: row 0 -> 1, row 1 -> 2, row 2 -> 3
    got = retrieval_metrics(sim)
    assert got["R@1"] == pytest.approx(100 / 3)
    assert got["R@5"] == 100.0
    assert got["MedR"] == 2.0 and got["MeanR"] == 2.0 and got["N"] == 3
    assert retrieval_metrics(torch.eye(4))["R@1"] == 100.0  # tensors are accepted


def test_constant_matrix_scores_zero():
    got = retrieval_metrics(np.ones((20, 20)))
    assert got["R@1"] == 0.0 and got["R@10"] == 0.0
    assert got["MedR"] == 20.0 and got["MeanR"] == 20.0


def test_retrieval_metrics_rejects_bad_input():
    with pytest.raises(ValueError, match="non-finite"):
        retrieval_metrics(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="rows <= columns"):
        retrieval_metrics(np.ones((3, 2)))
    with pytest.raises(ValueError, match="2-D"):
        retrieval_metrics(np.ones(3))


def test_qa_accuracy_ties_count_against():
    scores = np.array([[0.1, 0.9, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 2.0], [3.0, 0.0, 0.0]])
    answers = np.array([1, 0, 2, 1])
    got = qa_accuracy(scores, answers)
    assert got == {"accuracy": 50.0, "N": 4}  # row 1 is a tie: wrong
    with pytest.raises(ValueError, match="indices"):
        qa_accuracy(scores, np.array([0, 1, 2, 3]))


def test_qa_accuracy_equals_naive_loop():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(200, 5))
    answers = rng.integers(0, 5, size=200)
    naive = 100 * np.mean([np.argmax(s) == a for s, a in zip(scores, answers)])
    assert qa_accuracy(scores, answers)["accuracy"] == pytest.approx(naive)


def test_moment_iou_inclusive_chunks():
    assert moment_iou((0, 0), (0, 0)) == 1.0
    assert moment_iou((0, 1), (1, 2)) == pytest.approx(1 / 3)
    assert moment_iou((0, 0), (2, 3)) == 0.0


def naive_didemo(scores: np.ndarray, gt_times) -> dict:
    """The reference's list-based computation (LisaAnne eval.py) for tie-free scores."""
    r_avg, ious = [], []
    for row, times in zip(scores, gt_times):
        ranked = [DIDEMO_MOMENTS[k] for k in np.argsort(-row)]
        ious.append(np.mean(np.sort([moment_iou(ranked[0], t) for t in times])[-3:]))
        ranks = [ranked.index(tuple(t)) + 1 for t in times if tuple(t) in ranked]
        r_avg.append(np.mean(np.sort(ranks)[:3]))
    r_avg = np.array(r_avg)
    return {"rank@1": 100 * np.mean(r_avg <= 1), "rank@5": 100 * np.mean(r_avg <= 5), "mIoU": 100 * np.mean(ious)}


def test_didemo_metrics_equal_reference_list_computation():
    rng = np.random.default_rng(4)
    scores = rng.normal(size=(50, 21))
    gt = [[DIDEMO_MOMENTS[k] for k in rng.integers(0, 21, size=4)] for _ in range(50)]
    for q in range(0, 50, 3):  # make some queries easy
        scores[q, DIDEMO_MOMENTS.index(gt[q][0])] = 10.0
    got = didemo_metrics(scores, gt)
    want = naive_didemo(scores, gt)
    for key in want:
        assert got[key] == pytest.approx(want[key])
    assert got["N"] == 50 and got["no_gt_in_list"] == 0


def test_didemo_known_example_and_ties():
    scores = np.zeros((2, 21))
    scores[0, DIDEMO_MOMENTS.index((1, 2))] = 1.0  # top-1 is (1, 2)
    gt = [[(1, 2), (1, 2), (1, 1), (4, 4)], [(0, 0)]]
    got = didemo_metrics(scores, gt)
    # query 0: ranks of gt = [1, 1, 2 (tied with 19 others -> 21), 21] -> best 3 = [1, 1, 21] mean 7.67
    # query 1: constant scores -> rank 21, top prediction: the worst-IoU tied moment -> IoU 0
    assert got["rank@1"] == 0.0 and got["rank@5"] == 0.0
    ious_q0 = sorted([1.0, 1.0, 0.5, 0.0])[-3:]
    assert got["mIoU"] == pytest.approx(100 * (np.mean(ious_q0) + 0.0) / 2)
    valid = np.ones((2, 21), dtype=bool)
    valid[1, DIDEMO_MOMENTS.index((0, 0))] = False
    assert didemo_metrics(scores, gt, valid)["no_gt_in_list"] == 1


def test_crosstask_recall_hand_made():
    truth_a1 = np.zeros((6, 3))
    truth_a1[0:2, 0] = 1
    truth_a1[3, 1] = 1  # step 2 (index 2) absent in this video
    pred_a1 = np.zeros((6, 3))
    pred_a1[1, 0] = pred_a1[2, 1] = pred_a1[5, 2] = 1  # step 0 right, step 1 wrong
    truth_a2 = np.zeros((4, 3))
    truth_a2[0, 0] = truth_a2[1, 1] = truth_a2[3, 2] = 1
    pred_a2 = np.eye(4, 3)
    pred_a2[2, 2], pred_a2[3, 2] = 0, 1  # all three right
    truth_b = np.zeros((3, 2))
    truth_b[0, 1] = 1
    pred_b = np.zeros((3, 2))
    pred_b[0, 0] = pred_b[1, 1] = 1  # wrong
    got = crosstask_recall(
        {"A": {"v1": truth_a1, "v2": truth_a2}, "B": {"v3": truth_b}},
        {"A": {"v1": pred_a1, "v2": pred_a2}, "B": {"v3": pred_b}},
    )
    assert got["per_task"] == {"A": pytest.approx(100 * 4 / 5), "B": 0.0}
    assert got["recall"] == pytest.approx(40.0)
    assert got["N"] == 3 and got["steps"] == 6


def test_coin_frame_accuracy_hand_made():
    targets = [np.array([0, 0, 1, 1, 2]), np.array([0, 3, 3])]
    predictions = [np.array([0, 1, 1, 0, 2]), np.array([0, 0, 3])]
    got = coin_frame_accuracy(predictions, targets)
    assert got["frame_acc"] == pytest.approx(100 * 5 / 8)
    assert got["frame_acc_no_bg"] == pytest.approx(100 * 3 / 5)
    assert got["all_background"] == pytest.approx(100 * 3 / 8)
    assert got["predicted_background"] == pytest.approx(100 * 4 / 8)
    all_bg = coin_frame_accuracy([np.zeros(5, int), np.zeros(3, int)], targets)
    assert all_bg["frame_acc"] == got["all_background"] and all_bg["frame_acc_no_bg"] == 0.0
    with pytest.raises(ValueError, match="shape"):
        coin_frame_accuracy([np.zeros(4, int)], [np.zeros(5, int)])
