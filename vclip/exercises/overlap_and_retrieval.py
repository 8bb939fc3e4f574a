"""Checkers for chapter 03 (overlapped clips and retrieval-augmented groups, measured with the world's truth).

Paper: VideoCLIP (Xu et al., EMNLP 2021) sections 3.3 (overlapped video-text clips) and 3.4
(retrieval-augmented groups); reference ``mmpt/processors/how2processor.py`` and ``mmpt/tasks/retritask.py``.
The synthetic world knows the latent step of every second and of every narrated line
(:func:`vclip.synthetic.load_truth`), so each answer is graded against that truth:

* :func:`check_same_task_pairs` (03.1): which video pairs of a group show the same task;
* :func:`check_random_pair_share` (03.2): the share of random video pairs sharing a task in a world of
  evenly spread tasks, worked out on paper;
* :func:`check_false_negatives` (03.3): how many negatives of a group in truth show the text's step;
* :func:`check_containment` (03.4): how many seconds the model reads of one clip show the text's step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vclip.data.truth import SyntheticTruth
from vclip.exercises import Feedback, compare_number, compare_set
from vclip.synthetic import measure

__all__ = ["check_containment", "check_false_negatives", "check_random_pair_share", "check_same_task_pairs",
           "false_negative_count", "same_task_pairs"]


def same_task_pairs(video_ids: Sequence[str], truth: SyntheticTruth) -> set[tuple[str, str]]:
    """The pairs (a, b), a < b, of distinct videos of ``video_ids`` whose task is the same in truth."""
    ids = sorted(set(video_ids))
    return {(a, b) for i, a in enumerate(ids) for b in ids[i + 1:] if truth.video_tasks[a] == truth.video_tasks[b]}


def check_same_task_pairs(answer, video_ids: Sequence[str], truth: SyntheticTruth, group: int = 0) -> Feedback:
    """03.1: the same-task pairs of a group's videos, each as a (video id, video id) pair in either order."""
    mine = None if answer is None else {tuple(sorted(pair)) for pair in answer}
    return compare_set("03.1", f"your same-task pairs of group {group}", mine, same_task_pairs(video_ids, truth),
                       "the world's truth")


def check_random_pair_share(answer, videos: int = 512, tasks: int = 20) -> Feedback:
    """03.2: the percentage of distinct-video pairs sharing a task, ``videos`` spread evenly over ``tasks``."""
    if videos % tasks:
        raise ValueError(f"check_random_pair_share: {videos} videos do not spread evenly over {tasks} tasks")
    expected = measure.random_pair_same_task([i % tasks for i in range(videos)])
    return compare_number("03.2", f"your same-task share of random pairs ({videos} videos, {tasks} tasks)", answer,
                          expected, "vclip.synthetic.measure.random_pair_same_task", tolerance=0.005)


def false_negative_count(pairs: Sequence[measure.TruthPair]) -> int:
    """Negatives (text i, video clip j != i) whose clip mostly shows text i's step, in the seconds read."""
    share = measure.false_negative_share(pairs)["all"]
    return int(round(share * len(pairs) * (len(pairs) - 1) / 100))


def check_false_negatives(answer, pairs: Sequence[measure.TruthPair], group: int = 3) -> Feedback:
    """03.3: the false-negative count of one group of sampled pairs (:func:`measure.sample_truth_pairs`)."""
    return compare_number("03.3", f"your false-negative count for group {group}", answer,
                          false_negative_count(pairs), "the world's truth")


def check_containment(answer, truth: SyntheticTruth, video_id: str, video_start: int, video_end: int,
                      text_step: int, max_video_len: int = 32) -> Feedback:
    """03.4: seconds of the video clip [video_start, video_end) that show ``text_step``, in the seconds the
    model reads (the first ``max_video_len``)."""
    seconds = truth.seconds(video_id)
    read = seconds[video_start:min(video_end, video_start + max_video_len)]
    expected = int((read == text_step).sum())
    feedback = compare_number("03.4", "your count of seconds showing the step", answer, expected, "the world's truth")
    whole = int((seconds[video_start:video_end] == text_step).sum())
    if not feedback.passed and answer is not None and whole != expected and np.isclose(float(answer), whole):
        return Feedback("03.4", False, feedback.message + f"; you counted the whole {video_end - video_start}-s clip, "
                                                          f"but the model reads only its first {max_video_len} s")
    return feedback
