"""Metrics of the zero-shot tasks (paper section 4; reference ``mmpt/evaluators/metric.py``).

One function per metric of the reference's evaluators, computed from plain score arrays so that each
can be checked against a naive loop:

* :func:`retrieval_metrics` -- text->video (and video->text) retrieval, ``RetrievalMetric``
  (``metric.py:25-71``). Ranks are counted, not searched for, so ties are handled by a stated rule.
* :func:`qa_accuracy` -- MSR-VTT multiple-choice accuracy, ``QAMetric``.
* :func:`didemo_metrics` -- DiDeMo rank@1, rank@5 and mIoU, ``DiDeMoMetric`` (``metric.py:74-142``,
  itself LisaAnne/LocalizingMoments ``utils/eval.py``), including its mean-of-top-3 IoU and
  mean-of-best-3 rank rules.
* :func:`crosstask_recall` -- CrossTask step recall per task, averaged over tasks, ``CrossTaskMetric``
  (``metric.py:244-259``, from DmZhukov/CrossTask ``train.py::get_recalls``).
* :func:`coin_frame_accuracy` -- COIN frame accuracy, ``COINActionSegmentationMetric``, reported
  with background, without background, and for the all-background baseline.

The tie rule, everywhere: **ties count against the model**. A positive scored equal to a negative is
ranked after it, so a scorer that outputs a constant scores R@1 = 0 (not 100, as the reference's
``np.where(sorted - diagonal == 0)`` search would give with a tie-optimistic reading). With float
scores from a real model exact ties are rare and the rule changes nothing (see DEVIATIONS.md).

Percentages: R@K, accuracies, rank@K, mIoU and recall are returned in percent (0-100), as papers
report them; ranks (MedR, MeanR) are 1-based.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

# The 21 DiDeMo candidate moments over six 5-second chunks: (i, i) for i = 0..5, then every (i, j), i < j.
# Order as in the reference's DiDeMoPredictor (single chunks first, then the pairs in row-major order).
DIDEMO_MOMENTS: tuple[tuple[int, int], ...] = tuple((i, i) for i in range(6)) + tuple(
    (i, j) for i in range(6) for j in range(i + 1, 6)
)


def _as_finite_2d(name: str, array) -> np.ndarray:
    """``array`` as a float64 2-D numpy array, or a ValueError naming ``name``."""
    if hasattr(array, "detach"):  # a torch tensor
        array = array.detach().cpu().numpy()
    matrix = np.asarray(array, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        bad = np.argwhere(~np.isfinite(matrix))[:3].tolist()
        raise ValueError(f"{name} holds non-finite scores (NaN or inf), e.g. at {bad}")
    return matrix


def ranks_of_positives(sim) -> np.ndarray:
    """1-based rank of each row's positive (the diagonal entry) among that row's candidates.

    Args:
        sim: (Nq, Nc) scores, Nq <= Nc; ``sim[i, j]`` is query i against candidate j and the positive
            of query i is candidate i.

    Returns:
        (Nq,) int64 ranks: ``1 + #{j != i : sim[i, j] >= sim[i, i]}``. Ties count against the model.
    """
    matrix = _as_finite_2d("sim", sim)
    n_queries, n_candidates = matrix.shape
    if n_queries == 0 or n_queries > n_candidates:
        raise ValueError(
            f"sim must have 1 <= rows <= columns (the positive of row i is column i), got shape {matrix.shape}"
        )
    positives = matrix[np.arange(n_queries), np.arange(n_queries)]
    at_least = (matrix >= positives[:, None]).sum(axis=1)  # counts the positive itself once
    return at_least.astype(np.int64)


def summarize_ranks(ranks) -> dict[str, float]:
    """R@1/5/10 (percent), MedR and MeanR (1-based) and N from 1-based ranks (the reference's MedR is
    ``median(0-based rank) + 1``, the same number)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.ndim != 1 or ranks.size == 0 or (ranks < 1).any():
        raise ValueError(f"ranks must be a non-empty 1-D array of 1-based ranks, got {ranks[:5]}...")
    return {
        "R@1": float(100.0 * np.mean(ranks <= 1)),
        "R@5": float(100.0 * np.mean(ranks <= 5)),
        "R@10": float(100.0 * np.mean(ranks <= 10)),
        "MedR": float(np.median(ranks)),
        "MeanR": float(np.mean(ranks)),
        "N": int(ranks.size),
    }


def retrieval_metrics(sim) -> dict[str, float]:
    """Retrieval metrics of a query-by-candidate score matrix whose positives are on the diagonal.

    Args:
        sim: (N, N) (or (Nq, Nc) with Nq <= Nc) scores; row i's positive is column i. For text->video
            pass ``text @ video.T``; for video->text pass its transpose.

    Returns:
        {"R@1", "R@5", "R@10"} in percent, {"MedR", "MeanR"} over 1-based ranks, and "N" (rows).
        Rank rule: the positive is placed after every candidate scoring >= it, so a constant matrix
        gives rank N for every row and R@1 = 0.
    """
    return summarize_ranks(ranks_of_positives(sim))


def qa_accuracy(scores, answers) -> dict[str, float]:
    """Multiple-choice accuracy (MSR-VTT QA): a question is right when its answer strictly outscores
    every other candidate (ties count against the model; the reference's argmax takes the first).

    Args:
        scores: (N, C) candidate scores per question.
        answers: (N,) 0-based index of the right candidate.

    Returns:
        {"accuracy": percent, "N": N}.
    """
    matrix = _as_finite_2d("scores", scores)
    answers = np.asarray(answers)
    if answers.shape != (matrix.shape[0],) or matrix.shape[0] == 0:
        raise ValueError(f"answers must have shape ({matrix.shape[0]},) matching scores, got {answers.shape}")
    if not np.issubdtype(answers.dtype, np.integer) or (answers < 0).any() or (answers >= matrix.shape[1]).any():
        raise ValueError(f"answers must be integer indices in [0, {matrix.shape[1]}), got {answers[:5]}...")
    right = matrix[np.arange(len(answers)), answers]
    correct = (matrix >= right[:, None]).sum(axis=1) == 1
    return {"accuracy": float(100.0 * correct.mean()), "N": int(len(answers))}


def moment_iou(pred: Sequence[int], gt: Sequence[int]) -> float:
    """IoU of two moments given as inclusive (start_chunk, end_chunk) index pairs (DiDeMo eval)."""
    intersection = max(0, min(pred[1], gt[1]) + 1 - max(pred[0], gt[0]))
    union = max(pred[1], gt[1]) + 1 - min(pred[0], gt[0])
    return intersection / union


def didemo_metrics(moment_scores, gt_times: Sequence[Sequence[Sequence[int]]], valid=None) -> dict[str, float]:
    """DiDeMo moment-localisation metrics: rank@1, rank@5 and mIoU (percent), as the reference computes
    them, with ties counting against the model.

    Per query, as in the reference (LisaAnne's ``eval.py``):

    * the prediction list holds the valid candidate moments ranked by score; the **top** one is the
      prediction, and the IoU of the query is the mean of the **3 largest** IoUs between the prediction
      and the annotators' ``times``;
    * the rank of each annotator's moment is its 1-based position in the list (moments missing from
      the list are left out, as the reference's ``if tuple(t) in s`` does); the query's rank is the
      mean of the **3 smallest**;
    * rank@K is the percentage of queries whose mean rank is <= K.

    Ties: a moment's rank is ``1 + #{other valid moments scoring >= it}``; the prediction among
    moments tied for the top score is the one with the lowest mean-top-3 IoU.

    Args:
        moment_scores: (N, M) scores of the M candidate moments (normally the 21 of
            :data:`DIDEMO_MOMENTS`, in that order).
        gt_times: N lists of annotator moments, each an inclusive (start_chunk, end_chunk) pair that is
            one of the candidates.
        valid: optional (N, M) bool, True where a moment has at least one video frame (the reference
            ranks only those). Default: all valid.

    Returns:
        {"rank@1", "rank@5", "mIoU", "N", "no_gt_in_list"}: the last counts queries none of whose
        annotator moments were valid candidates (their rank is NaN in the reference, so they fail
        rank@K; counted here so it is visible).
    """
    scores = _as_finite_2d("moment_scores", moment_scores)
    n_queries, n_moments = scores.shape
    moments = DIDEMO_MOMENTS if n_moments == len(DIDEMO_MOMENTS) else None
    if moments is None:
        raise ValueError(f"moment_scores must have {len(DIDEMO_MOMENTS)} columns (DIDEMO_MOMENTS), got {n_moments}")
    if len(gt_times) != n_queries or n_queries == 0:
        raise ValueError(f"gt_times must hold one list per query ({n_queries}), got {len(gt_times)}")
    valid = np.ones_like(scores, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if valid.shape != scores.shape:
        raise ValueError(f"valid must have shape {scores.shape}, got {valid.shape}")
    index_of = {moment: k for k, moment in enumerate(moments)}

    mean_ranks, mean_ious, no_gt = [], [], 0
    for q in range(n_queries):
        times = [tuple(int(x) for x in t) for t in gt_times[q]]
        if not times:
            raise ValueError(f"query {q} has no annotated times")
        unknown = [t for t in times if t not in index_of]
        if unknown:
            raise ValueError(f"query {q}: times {unknown} are not DiDeMo candidate moments (chunks 0..5, start <= end)")
        candidates = np.flatnonzero(valid[q])
        if candidates.size == 0:
            raise ValueError(f"query {q} has no valid candidate moment")
        row = scores[q, candidates]
        top = candidates[row == row.max()]
        iou_of_top = [np.mean(np.sort([moment_iou(moments[k], t) for t in times])[-3:]) for k in top]
        mean_ious.append(min(iou_of_top))
        # rank = #{valid moments scoring >= it}, itself included: ties go against the model
        ranks = [int((row >= scores[q, index_of[t]]).sum()) for t in times if valid[q, index_of[t]]]
        if ranks:
            mean_ranks.append(float(np.mean(np.sort(ranks)[:3])))
        else:
            no_gt += 1
            mean_ranks.append(float("inf"))
    mean_ranks = np.asarray(mean_ranks)
    return {
        "rank@1": float(100.0 * np.mean(mean_ranks <= 1)),
        "rank@5": float(100.0 * np.mean(mean_ranks <= 5)),
        "mIoU": float(100.0 * np.mean(mean_ious)),
        "N": int(n_queries),
        "no_gt_in_list": int(no_gt),
    }


def crosstask_recall(
    y_true: Mapping[str, Mapping[str, np.ndarray]], y_pred: Mapping[str, Mapping[str, np.ndarray]]
) -> dict[str, object]:
    """CrossTask step-localisation recall (percent), per task and averaged over tasks.

    For a task, recall = sum over its videos of ``(Y_true * Y_pred).sum()`` divided by the sum over its
    videos of the number of steps present in ``Y_true`` (``(Y_true.sum(0) > 0).sum()``). With one
    predicted second per step, a step counts as found when its second lies inside one of its
    annotated segments. The reported recall is the unweighted mean over tasks.

    Args:
        y_true: {task: {video: (T, K) 0/1 array}} ground truth per second and step.
        y_pred: {task: {video: (T, K) 0/1 array}} predictions (the dynamic program's output); only
            videos present in both are scored, as in the reference.

    Returns:
        {"recall": mean percent, "per_task": {task: percent}, "N": videos scored, "steps": steps present}.
        A task with no step present raises ValueError (the reference divides by zero).
    """
    per_task, n_videos, n_steps = {}, 0, 0
    for task, videos_true in y_true.items():
        videos_pred = y_pred.get(task, {})
        matched = total = 0
        for video in sorted(set(videos_true) & set(videos_pred)):
            truth = np.asarray(videos_true[video])
            pred = np.asarray(videos_pred[video])
            if truth.shape != pred.shape or truth.ndim != 2:
                raise ValueError(
                    f"task {task} video {video}: y_true {truth.shape} and y_pred {pred.shape} must be equal (T, K)"
                )
            total += int((truth.sum(axis=0) > 0).sum())
            matched += int((truth * pred).sum())
            n_videos += 1
        if total == 0:
            raise ValueError(f"task {task}: no scored video has any annotated step; recall is undefined")
        per_task[task] = 100.0 * matched / total
        n_steps += total
    if not per_task:
        raise ValueError("crosstask_recall needs at least one task")
    return {"recall": float(np.mean(list(per_task.values()))), "per_task": per_task, "N": n_videos, "steps": n_steps}


def coin_frame_accuracy(predictions: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> dict[str, float]:
    """COIN frame accuracy (percent), pooled over all seconds of all videos; label 0 is background.

    Args:
        predictions: per video, (T,) int predicted label per second.
        targets: per video, (T,) int true label per second.

    Returns:
        {"frame_acc": with background (the reference's number), "frame_acc_no_bg": over seconds whose
        true label is not background, "all_background": the accuracy of predicting 0 everywhere,
        "predicted_background": percent of seconds predicted 0, "N": videos, "seconds": seconds}.
    """
    if len(predictions) != len(targets) or not targets:
        raise ValueError(f"need one prediction per target video, got {len(predictions)} and {len(targets)}")
    for v, (pred, true) in enumerate(zip(predictions, targets)):
        if np.shape(pred) != np.shape(true) or np.ndim(true) != 1:
            raise ValueError(f"video {v}: prediction shape {np.shape(pred)} != target shape {np.shape(true)} (T,)")
    pred = np.concatenate([np.asarray(p, dtype=np.int64) for p in predictions])
    true = np.concatenate([np.asarray(t, dtype=np.int64) for t in targets])
    if true.size == 0:
        raise ValueError("coin_frame_accuracy got zero seconds")
    foreground = true != 0
    return {
        "frame_acc": float(100.0 * np.mean(pred == true)),
        "frame_acc_no_bg": float(100.0 * np.mean(pred[foreground] == true[foreground])) if foreground.any() else float("nan"),
        "all_background": float(100.0 * np.mean(~foreground)),
        "predicted_background": float(100.0 * np.mean(pred == 0)),
        "N": len(targets),
        "seconds": int(true.size),
    }
