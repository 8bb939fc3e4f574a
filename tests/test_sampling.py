"""Overlapped / exact clip sampling (vclip.sampling): invariants on hand-made videos, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vclip.sampling import (
    ArrayVideos,
    SamplingConfig,
    aligned_video_span,
    grow_video_clip,
    sample_clip_pairs,
    sample_group,
    sample_text_clip,
    sample_video_clip,
)


def make_video(rng, num_seconds=120, num_captions=30):
    """Captions of 1..12 tokens, 2-6 s long, spread over the video (some past its end)."""
    starts = np.sort(rng.uniform(0, num_seconds + 5, size=num_captions))
    ends = starts + rng.uniform(2, 6, size=num_captions)
    tokens = [list(rng.integers(1000, 2000, size=int(rng.integers(1, 13)))) for _ in range(num_captions)]
    feats = rng.standard_normal((num_seconds, 512)).astype(np.float32)
    return feats, starts, ends, tokens


def test_text_clip_is_contiguous_reaches_budget_or_stops():
    rng = np.random.default_rng(0)
    for trial in range(300):
        _, starts, ends, tokens = make_video(rng, num_captions=int(rng.integers(1, 40)))
        budget = int(rng.integers(8, 65))
        center = int(rng.integers(0, len(starts)))
        first, last = sample_text_clip(starts, ends, tokens, rng, budget, 256.0, center=center)
        assert 0 <= first <= center <= last < len(starts)
        n_tok = sum(len(tokens[i]) for i in range(first, last + 1))
        span = ends[last] - starts[first]
        everything = first == 0 and last == len(starts) - 1
        # It stopped for one of the three reasons, and was below budget/span one caption earlier.
        assert n_tok >= budget or span >= 256.0 or everything, trial
        if first < last:
            drop_first = sum(len(tokens[i]) for i in range(first + 1, last + 1))
            drop_last = sum(len(tokens[i]) for i in range(first, last))
            assert min(drop_first, drop_last) < budget


def test_text_clip_span_limit_stops_growth():
    starts = np.arange(10) * 100.0
    ends = starts + 90.0
    tokens = [[5]] * 10
    first, last = sample_text_clip(starts, ends, tokens, np.random.default_rng(1), budget=64, max_span=256.0)
    assert ends[last] - starts[first] >= 256.0
    assert last - first == 2  # 90 -> 190 -> 290 s: three captions reach the 256 s limit


def test_video_growth_length_and_bounds():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        t = int(rng.integers(1, 80))
        center = int(rng.integers(0, t))
        duration = int(rng.integers(3, 33))
        start, end = grow_video_clip(t, duration, center, rng)
        assert 0 <= start <= center <= end <= t
        assert end - start == min(duration, t)


def test_overlapped_video_clip_overlaps_text_clip():
    rng = np.random.default_rng(0)
    cfg = SamplingConfig()
    durations = []
    for _ in range(2000):
        t = int(rng.integers(5, 200))
        s = float(rng.uniform(0, t - 1))
        e = s + float(rng.uniform(0.5, 40))
        start, end = sample_video_clip(s, e, t, rng, cfg)
        center_low = min(max(math.floor(s), 0), t - 1)
        center_high = min(max(math.ceil(e), 0), t - 1)
        # the centre lies inside the text span (clamped), and the clip contains the centre
        assert start <= center_high and end >= center_low
        assert 0 <= start < end <= t
        durations.append(end - start)
        assert end - start <= 32
    assert min(durations) == 3 and max(durations) == 32


def test_exact_alignment_is_the_text_span():
    cfg = SamplingConfig(alignment="exact")
    rng = np.random.default_rng(0)
    assert sample_video_clip(3.2, 9.7, 100, rng, cfg) == (3, 10)
    assert aligned_video_span(98.5, 130.0, 100) == (98, 100)
    assert aligned_video_span(150.0, 160.0, 100) == (99, 100)  # captions past the features keep one row


def test_clip_pairs_deterministic_by_seed():
    feats, starts, ends, tokens = make_video(np.random.default_rng(3))
    a = sample_clip_pairs(len(feats), starts, ends, tokens, 16, np.random.default_rng(7))
    b = sample_clip_pairs(len(feats), starts, ends, tokens, 16, np.random.default_rng(7))
    c = sample_clip_pairs(len(feats), starts, ends, tokens, 16, np.random.default_rng(8))
    assert a == b
    assert a != c
    for p in a:
        assert p.tokens == [t for i in range(p.text_first, p.text_last + 1) for t in tokens[i]]


def test_group_shapes_and_layout():
    rng = np.random.default_rng(0)
    videos = {f"v{i}": make_video(rng, num_seconds=int(rng.integers(10, 100))) for i in range(4)}
    store = ArrayVideos(videos)
    batch = sample_group(store, store.video_ids, 3, np.random.default_rng(0), SamplingConfig())
    assert batch.vfeats.shape == (12, 32, 512) and batch.vmask.shape == (12, 32)
    assert batch.input_ids.shape[0] == 12 and batch.attention_mask.shape == batch.input_ids.shape
    assert batch.input_ids.shape[1] <= 63  # [CLS] + 61 + [SEP]
    assert batch.video_index.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    for row in range(12):
        v_start, v_end = batch.spans[row, :2].tolist()
        n = int(batch.vmask[row].sum())
        assert n == min(v_end - v_start, 32)
        assert batch.vmask[row, :n].all() and not batch.vmask[row, n:].any()
        feats = videos[f"v{int(batch.video_index[row])}"][0]
        np.testing.assert_array_equal(batch.vfeats[row, :n].numpy(), feats[v_start : v_start + n])
        assert (batch.vfeats[row, n:] == 0).all()
        assert batch.input_ids[row, 0] == 101


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="no captions"):
        sample_clip_pairs(10, [], [], [], 4, np.random.default_rng(0))
    with pytest.raises(ValueError, match="alignment"):
        SamplingConfig(alignment="aligned")
    store = ArrayVideos({"empty": (np.zeros((5, 512), np.float32), [], [], [])})
    with pytest.raises(ValueError, match="'empty'"):
        sample_group(store, ["empty"], 2, np.random.default_rng(0), SamplingConfig())
