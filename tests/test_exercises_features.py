"""Chapter 01's exercise checkers: the package's own answer passes, a wrong one is told both numbers."""

from collections import Counter

import numpy as np
import pytest

from vclip.data.dedup import dedup_captions
from vclip.data.formats import clean_captions, load_features, read_pretrain_folder
from vclip.data.store import prepare_captions
from vclip.data.truth import load_truth
from vclip.exercises import features as ex


@pytest.fixture(scope="module")
def world(synthetic_world):
    return read_pretrain_folder(synthetic_world / "pretrain"), load_truth(synthetic_world / "pretrain")


def test_longer_clips_checker(world):
    folder, truth = world
    video_id = folder.train_ids[1]
    narrated, read = ex.narrated_read_seconds(folder, truth, video_id, seed=0, num_text_clips=3, longest=64)
    assert 0 <= narrated <= read <= 3 * 32  # the model reads at most 32 s of each clip
    assert ex.check_longer_overlapped_clips(narrated, read, folder, truth, video_id, 0, 3).passed
    wrong = ex.check_longer_overlapped_clips(narrated + 2, read, folder, truth, video_id, 0, 3)
    assert not wrong.passed and str(narrated + 2) in wrong.message and str(narrated) in wrong.message
    too_long = ex.check_longer_overlapped_clips(narrated, read + 40, folder, truth, video_id, 0, 3)
    assert not too_long.passed and "first 32 s" in too_long.message
    assert "no answer yet" in ex.check_longer_overlapped_clips(None, read, folder, truth, video_id, 0, 3).message


def test_another_coin_checker(world):
    folder, _ = world
    video_id = folder.train_ids[0]
    raw = folder.captions[video_id]
    seconds = load_features(folder.feature_path(video_id)).shape[0]
    kept = dedup_captions(clean_captions(raw, num_seconds=seconds)[0], seed=1).text
    assert ex.check_another_coin(kept, folder, video_id, seed=1).passed
    wrong = ex.check_another_coin(kept[:-1], folder, video_id, seed=1)
    assert not wrong.passed and str(len(kept)) in wrong.message and str(len(kept) - 1) in wrong.message


def test_rule_counts_checker(world):
    folder, _ = world
    counts = Counter()
    for video_id in folder.train_ids:
        seconds = load_features(folder.feature_path(video_id)).shape[0]
        dedup_captions(clean_captions(folder.captions[video_id], num_seconds=seconds)[0], seed=0, rules=counts)
    assert ex.check_rule_counts(dict(counts), folder).passed
    off = dict(counts, subset=counts["subset"] + 1)
    verdict = ex.check_rule_counts(off, folder)
    assert not verdict.passed and f"{counts['subset'] + 1}" in verdict.message and "'subset'" in verdict.message
    assert "unknown rule" in ex.check_rule_counts({"superset!": 1}, folder).message


def test_another_video_and_exact_overflow(world):
    folder, _ = world
    video_id = folder.train_ids[2]
    raw = folder.captions[video_id]
    seconds = load_features(folder.feature_path(video_id)).shape[0]
    kept = dedup_captions(clean_captions(raw, num_seconds=seconds)[0], seed=0)
    assert ex.check_another_video(len(raw.text), len(kept.text), folder, 2).passed
    assert not ex.check_another_video(len(raw.text), len(kept.text) + 1, folder, 2).passed
    starts, ends, tokens, _ = prepare_captions(raw, num_seconds=seconds)
    over = ex.exact_clips_over(seconds, starts, ends, tokens, 50, seed=0)
    assert 0 <= over <= 50
    assert over == ex.exact_clips_over(seconds, starts, ends, tokens, 50, seed=0)
    assert np.isscalar(over)
