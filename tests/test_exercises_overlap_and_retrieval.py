"""Chapter 03's checkers (vclip.exercises.overlap_and_retrieval), graded against the synthetic world's truth:
a right answer passes, a wrong one fails with a message naming both numbers."""

import numpy as np
import pytest

from vclip.data.formats import read_pretrain_folder
from vclip.data.store import open_pretrain
from vclip.data.truth import load_truth
from vclip.exercises.overlap_and_retrieval import (
    check_containment,
    check_false_negatives,
    check_random_pair_share,
    check_same_task_pairs,
    false_negative_count,
    same_task_pairs,
)
from vclip.sampling import SamplingConfig, sample_clip_pairs
from vclip.synthetic import measure


@pytest.fixture(scope="module")
def world(synthetic_world):
    store, train_ids, _ = open_pretrain(synthetic_world)
    truth = load_truth(synthetic_world / "pretrain")
    raw = {v: {"start": c.start, "end": c.end} for v, c in read_pretrain_folder(synthetic_world / "pretrain").captions.items()}
    return store, list(train_ids), truth, raw


def test_same_task_pairs(world):
    _, train_ids, truth, _ = world
    by_task = {}
    for v in train_ids:
        by_task.setdefault(truth.video_tasks[v], []).append(v)
    twins = next(vs for vs in by_task.values() if len(vs) >= 2)[:2]
    ids = twins + [v for v in train_ids if truth.video_tasks[v] != truth.video_tasks[twins[0]]][:6]
    truth_pairs = {(a, b) for a in ids for b in ids if a < b and truth.video_tasks[a] == truth.video_tasks[b]}
    assert truth_pairs and same_task_pairs(ids, truth) == truth_pairs
    assert check_same_task_pairs([tuple(reversed(p)) for p in truth_pairs], ids, truth).passed  # order does not matter
    wrong = check_same_task_pairs(set(), ids, truth)
    assert not wrong.passed and f"has 0 items, the world's truth has {len(truth_pairs)}" in wrong.message


def test_random_pair_share():
    worked = 100 * 16 * 32 * 31 / (512 * 511)
    assert worked == pytest.approx(measure.random_pair_same_task([i % 16 for i in range(512)]))
    assert check_random_pair_share(worked, videos=512, tasks=16).passed
    wrong = check_random_pair_share(100 / 16, videos=512, tasks=16)
    assert not wrong.passed and "6.25" in wrong.message and f"{worked:.4g}" in wrong.message
    with pytest.raises(ValueError, match="evenly"):
        check_random_pair_share(1.0, videos=500, tasks=16)


def _worked_false_negatives(pairs):  # the notebook's worked solution
    def majority(seconds):
        shown = seconds[seconds >= 0]
        return np.bincount(shown).argmax() if len(shown) else -1
    clip_steps = [majority(p.seconds) for p in pairs]
    return sum(1 for i, p in enumerate(pairs) for j, c in enumerate(clip_steps)
               if i != j and p.text_step >= 0 and c == p.text_step)


def test_false_negatives(world):
    store, train_ids, truth, raw = world
    pairs = measure.sample_truth_pairs(store, truth, raw, train_ids[24:32], 8, np.random.default_rng(0))
    count = _worked_false_negatives(pairs)
    assert count > 0 and false_negative_count(pairs) == count
    assert check_false_negatives(count, pairs, group=3).passed
    wrong = check_false_negatives(count + 3, pairs, group=3)
    assert not wrong.passed
    assert f"your false-negative count for group 3 is {count + 3}; the world's truth says {count}" in wrong.message


def test_containment_names_the_read_limit(world):
    store, train_ids, truth, _ = world
    rng, exact = np.random.default_rng(0), SamplingConfig(alignment="exact")
    for video_id in train_ids:
        for clip in sample_clip_pairs(len(truth.seconds(video_id)), *store.captions(video_id), 8, rng, exact):
            step = truth.clip_step(video_id, clip.video_start, clip.video_end)
            labels = truth.seconds(video_id)
            read = int((labels[clip.video_start:clip.video_start + 32] == step).sum())
            whole = int((labels[clip.video_start:clip.video_end] == step).sum())
            if whole != read:
                break
        else:
            continue
        break
    else:
        pytest.fail("no exact clip of the world shows its step after its first 32 s")
    args = (truth, video_id, clip.video_start, clip.video_end, step)
    assert check_containment(read, *args).passed
    wrong = check_containment(whole, *args)
    assert not wrong.passed and str(whole) in wrong.message and str(read) in wrong.message
    assert "first 32 s" in wrong.message
