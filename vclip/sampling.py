"""Overlapped (and exactly aligned) video/text clip sampling, and groups of clip pairs.

Paper: VideoCLIP section 3.3, "Overlapped Video-Text Clips": a text clip is sampled first, then a
video clip whose centre lies inside the text clip's span and whose duration is drawn independently,
so positives overlap in time but are not aligned.

Reference (fairseq ``examples/MMPT``):

* ``mmpt/processors/how2processor.py``: ``FixedLenAligner.__call__`` (16 clips per video, uniform
  centre caption), ``VariedLenAligner`` (text budget ``randint(8, 64)``), ``OverlappedAligner.sampling``
  (video centre and duration), ``TextClipSamplingProcessor`` (growing the text clip by whole
  captions), ``VideoClipSamplingProcessor`` (growing the video clip by seconds), and
  ``FixedLenAligner.sampling`` (the aligned span used by the retrieval embedding pass).
* ``mmpt/processors/how2retriprocessor.py`` and ``mmpt/tasks/retritask.py::reshape_subsample``: a
  group of 32 videos x 16 clips flattened into 512 pairs.

Everything here works on plain arrays: a video is its per-second feature array (T, 512) and its
captions (starts, ends, token-id lists). Randomness comes only from the ``numpy.random.Generator``
passed in, so sampling is deterministic given a seed. The reference draws from Python's ``random``;
the distributions are the same, the streams are not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

ALIGNMENTS = ("overlap", "exact")


@dataclass
class SamplingConfig:
    """How clip pairs are drawn (defaults: the reference's ``how2.yaml``)."""

    text_min_tokens: int = 8  # sampled_min_len: the text budget is randint(8, 64), inclusive
    text_max_tokens: int = 64  # sampled_max_len (budgets above 61 are capped by the text layout)
    max_text_span: float = 256.0  # stop growing the text clip once it spans >= 256 s
    video_min_seconds: int = 3  # sampled_video_min_len: duration randint(3, 32), inclusive
    video_max_seconds: int = 32  # sampled_video_max_len
    max_video_len: int = 32  # video rows fed to the model (Tv)
    alignment: str = "overlap"  # "overlap" (paper) or "exact" (ablation: video span = text span)

    def __post_init__(self) -> None:
        if self.alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {self.alignment!r}")
        if not 1 <= self.text_min_tokens <= self.text_max_tokens:
            raise ValueError(
                f"need 1 <= text_min_tokens <= text_max_tokens, got {self.text_min_tokens}, {self.text_max_tokens}"
            )
        if not 1 <= self.video_min_seconds <= self.video_max_seconds:
            raise ValueError(
                "need 1 <= video_min_seconds <= video_max_seconds, got "
                f"{self.video_min_seconds}, {self.video_max_seconds}"
            )
        if self.max_video_len < 1:
            raise ValueError(f"max_video_len must be >= 1, got {self.max_video_len}")


@dataclass
class ClipPair:
    """One positive pair: caption indices [text_first, text_last] and video seconds [video_start, video_end)."""

    text_first: int
    text_last: int  # inclusive
    video_start: int
    video_end: int  # exclusive
    tokens: list[int]  # concatenated token ids of the text clip (not yet capped at 61)


def _check_captions(starts: Sequence[float], ends: Sequence[float], token_lists: Sequence[Sequence[int]]):
    if len(starts) == 0:
        raise ValueError("a video with no captions cannot be sampled (0 captions)")
    if not len(starts) == len(ends) == len(token_lists):
        raise ValueError(
            f"captions disagree in length: {len(starts)} starts, {len(ends)} ends, {len(token_lists)} token lists"
        )


def sample_text_clip(
    starts: Sequence[float],
    ends: Sequence[float],
    token_lists: Sequence[Sequence[int]],
    rng: np.random.Generator,
    budget: int,
    max_span: float = 256.0,
    center: int | None = None,
) -> tuple[int, int]:
    """Grow a text clip of whole captions around a centre caption (``TextClipSamplingProcessor``).

    Starting from caption ``center`` (uniform when None), add whole neighbouring captions while there
    are captions left on either side, fewer than ``budget`` tokens are held, and the span
    end(last) - start(first) is below ``max_span`` seconds: with probability 0.5 the right neighbour
    (if any), otherwise the left one (if any), otherwise the right one. The budget is a minimum to
    reach, so the clip may overshoot it.

    Returns:
        (first, last): inclusive caption indices of a contiguous run containing ``center``.
    """
    _check_captions(starts, ends, token_lists)
    n = len(starts)
    if center is None:
        center = int(rng.integers(0, n))
    if not 0 <= center < n:
        raise ValueError(f"center caption {center} is outside [0, {n})")
    first = last = center
    n_tokens = len(token_lists[center])
    span = float(ends[last]) - float(starts[first])
    while (first > 0 or last < n - 1) and n_tokens < budget and span < max_span:
        if rng.random() < 0.5 and last < n - 1:
            last += 1
            n_tokens += len(token_lists[last])
        elif first > 0:
            first -= 1
            n_tokens += len(token_lists[first])
        else:  # no left neighbour: the loop condition guarantees a right one
            last += 1
            n_tokens += len(token_lists[last])
        span = float(ends[last]) - float(starts[first])
    return first, last


def grow_video_clip(num_seconds: int, duration: int, center: int, rng: np.random.Generator) -> tuple[int, int]:
    """Grow [start, end) one second at a time around ``center`` (``VideoClipSamplingProcessor``).

    Right when start = 0, left when end = T, otherwise left or right with probability 0.5 each, until
    the span reaches ``duration`` or covers the video. The result has end - start = min(duration, T)
    and start <= center <= end.
    """
    if num_seconds < 1:
        raise ValueError(f"a video needs at least 1 feature second, got {num_seconds}")
    if not 0 <= center < num_seconds:
        raise ValueError(f"video centre {center} is outside [0, {num_seconds})")
    start = end = center
    length = 0
    while (start > 0 or end < num_seconds) and length < duration:
        if start <= 0:
            end += 1
        elif end >= num_seconds:
            start -= 1
        elif rng.random() < 0.5:
            end += 1
        else:
            start -= 1
        length += 1
    return start, end


def aligned_video_span(text_start: float, text_end: float, num_seconds: int) -> tuple[int, int]:
    """The seconds [floor(start), ceil(end)) of a text clip, clipped to the video (``FixedLenAligner``).

    Captions that run past the last feature second keep at least one row (the reference would give an
    empty clip there; see DEVIATIONS.md).
    """
    start = min(max(math.floor(text_start), 0), num_seconds - 1)
    end = max(min(math.ceil(text_end), num_seconds), start + 1)
    return start, end


def sample_video_clip(
    text_start: float,
    text_end: float,
    num_seconds: int,
    rng: np.random.Generator,
    config: SamplingConfig,
) -> tuple[int, int]:
    """The video span paired with a text clip spanning [text_start, text_end] seconds.

    ``overlap`` (``OverlappedAligner.sampling``): centre = randint(floor(start), ceil(end)) inclusive
    (or their midpoint when equal), clamped to [0, T-1]; duration D = randint(3, 32) inclusive; grown
    by :func:`grow_video_clip`. ``exact``: the text clip's own seconds (:func:`aligned_video_span`).

    Returns:
        (start, end): a half-open range of feature rows, 1 <= end - start.
    """
    if config.alignment == "exact":
        return aligned_video_span(text_start, text_end, num_seconds)
    low, high = math.floor(text_start), math.ceil(text_end)
    center = int(rng.integers(low, high + 1)) if low < high else (low + high) // 2
    center = min(max(center, 0), num_seconds - 1)
    duration = int(rng.integers(config.video_min_seconds, config.video_max_seconds + 1))
    return grow_video_clip(num_seconds, duration, center, rng)


def sample_clip_pairs(
    num_seconds: int,
    starts: Sequence[float],
    ends: Sequence[float],
    token_lists: Sequence[Sequence[int]],
    num_clips: int,
    rng: np.random.Generator,
    config: SamplingConfig | None = None,
) -> list[ClipPair]:
    """``num_clips`` independent clip pairs from one video (``FixedLenAligner.__call__``).

    Each pair draws its text budget randint(min, max), a uniform centre caption, the text clip, then
    its video clip (overlapped or exact, per ``config.alignment``).
    """
    config = config or SamplingConfig()
    _check_captions(starts, ends, token_lists)
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    pairs = []
    for _ in range(num_clips):
        budget = int(rng.integers(config.text_min_tokens, config.text_max_tokens + 1))
        first, last = sample_text_clip(starts, ends, token_lists, rng, budget, config.max_text_span)
        v_start, v_end = sample_video_clip(float(starts[first]), float(ends[last]), num_seconds, rng, config)
        tokens = [int(t) for i in range(first, last + 1) for t in token_lists[i]]
        pairs.append(ClipPair(first, last, v_start, v_end, tokens))
    return pairs


@dataclass
class ClipBatch:
    """A collated group of clip pairs; row i of every tensor is pair i.

    Shapes: vfeats (N, Tv, 512) float32, vmask (N, Tv) bool, input_ids (N, L) long, attention_mask
    (N, L) bool, video_index (N,) long (position of the pair's video in the group), spans (N, 4) long
    (video_start, video_end, text_first, text_last).
    """

    vfeats: torch.Tensor
    vmask: torch.Tensor
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    video_index: torch.Tensor
    spans: torch.Tensor

    def to(self, device) -> ClipBatch:
        return ClipBatch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))

    def __len__(self) -> int:
        return self.vfeats.shape[0]


def collate_pairs(
    features: Sequence[np.ndarray], pairs: Sequence[Sequence[ClipPair]], max_video_len: int = 32
) -> ClipBatch:
    """Collate the clip pairs of several videos into one batch (``_build_video_seq``, ``_build_text_seq``).

    Args:
        features: per video, its feature array (T_v, D).
        pairs: per video, its clip pairs; pairs of video v become consecutive rows.
        max_video_len: Tv; a clip's rows are copied to the front of a zero (Tv, D) array and truncated
            to Tv rows, as the reference does.
    """
    from vclip.tokenizer import build_text_batch

    if len(features) != len(pairs):
        raise ValueError(f"{len(features)} feature arrays but {len(pairs)} lists of clip pairs")
    n = sum(len(p) for p in pairs)
    if n == 0:
        raise ValueError("nothing to collate: 0 clip pairs")
    dim = features[0].shape[1]
    vfeats = np.zeros((n, max_video_len, dim), dtype=np.float32)
    vmask = np.zeros((n, max_video_len), dtype=bool)
    spans = np.zeros((n, 4), dtype=np.int64)
    video_index = np.zeros(n, dtype=np.int64)
    token_lists = []
    row = 0
    for v, (feat, video_pairs) in enumerate(zip(features, pairs)):
        if feat.ndim != 2 or feat.shape[1] != dim:
            raise ValueError(f"video {v} of the group has features of shape {feat.shape}, expected (T, {dim})")
        for p in video_pairs:
            clip = feat[p.video_start : min(p.video_end, p.video_start + max_video_len)]
            vfeats[row, : len(clip)] = clip
            vmask[row, : len(clip)] = True
            spans[row] = (p.video_start, p.video_end, p.text_first, p.text_last)
            video_index[row] = v
            token_lists.append(p.tokens)
            row += 1
    input_ids, attention_mask = build_text_batch(token_lists)
    return ClipBatch(
        torch.from_numpy(vfeats),
        torch.from_numpy(vmask),
        input_ids,
        attention_mask,
        torch.from_numpy(video_index),
        torch.from_numpy(spans),
    )


def sample_group(
    store, video_ids: Sequence[str], clips_per_video: int, rng: np.random.Generator, config: SamplingConfig
) -> ClipBatch:
    """Sample and collate one group: V videos x C clips -> a ClipBatch of V*C pairs.

    ``store`` is anything with ``features(vid) -> (T, 512)`` and ``captions(vid) -> (starts, ends,
    token_lists)`` (a :class:`vclip.data.FeatureStore`, or :class:`ArrayVideos` for plain arrays).
    """
    feats, pairs = [], []
    for vid in video_ids:
        feat = np.asarray(store.features(vid))
        starts, ends, token_lists = store.captions(vid)
        try:
            pairs.append(sample_clip_pairs(len(feat), starts, ends, token_lists, clips_per_video, rng, config))
        except ValueError as err:
            raise ValueError(f"video {vid!r}: {err}") from err
        feats.append(feat)
    return collate_pairs(feats, pairs, config.max_video_len)


class ArrayVideos:
    """Videos held as plain arrays, with the same reading API as the feature store.

    Args:
        videos: {video_id: (features (T, 512), starts, ends, token_lists)}.
    """

    def __init__(self, videos: dict[str, tuple[np.ndarray, Sequence[float], Sequence[float], Sequence]]):
        self._videos = dict(videos)
        self.video_ids = list(self._videos)

    def features(self, vid: str) -> np.ndarray:
        return self._videos[vid][0]

    def captions(self, vid: str):
        _, starts, ends, token_lists = self._videos[vid]
        return starts, ends, token_lists
