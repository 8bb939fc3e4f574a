"""Checkers for the exercises of chapter 01 (feature loading, caption de-duplication, clip sampling).

Each checker recomputes the answer with the package (``vclip.data.dedup``, ``vclip.sampling``) or reads it
from the synthetic world's truth (``vclip.synthetic.load_truth``) and grades the student's value with the
helpers of :mod:`vclip.exercises`. Paper: VideoCLIP section 3.3 (overlapped clips) and 4.1 (HowTo100M
captions); reference: fairseq ``examples/MMPT/mmpt/processors/dedupprocessor.py`` and ``how2processor.py``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np

from vclip.data.dedup import RULES, dedup_captions
from vclip.data.formats import PretrainFolder, clean_captions, load_features
from vclip.data.store import prepare_captions
from vclip.data.truth import SyntheticTruth
from vclip.exercises import Feedback, compare_number, compare_set, not_answered
from vclip.sampling import SamplingConfig, sample_clip_pairs
from vclip.synthetic.measure import narrated_step

__all__ = ["check_another_coin", "check_longer_overlapped_clips", "check_rule_counts", "check_another_video",
           "exact_clips_over", "narrated_read_seconds"]


def _video(folder: PretrainFolder, video_id: str):
    seconds = load_features(folder.feature_path(video_id)).shape[0]
    return folder.captions[video_id], seconds


def narrated_read_seconds(folder: PretrainFolder, truth: SyntheticTruth, video_id: str, seed: int,
                          num_text_clips: int, longest: int = 32, max_video_len: int = 32) -> tuple[int, int]:
    """Seconds of the overlapped clips the model reads that show the step their text speaks of, and all read.

    The clips are the first ``num_text_clips`` pairs of ``sample_clip_pairs`` with ``video_max_seconds=longest``
    drawn from ``np.random.default_rng(seed)``: the same random stream as chapter 01's few lines.
    """
    raw, seconds = _video(folder, video_id)
    starts, ends, tokens, _ = prepare_captions(raw, num_seconds=seconds, dedup_seed=seed)
    pairs = sample_clip_pairs(seconds, starts, ends, tokens, num_text_clips, np.random.default_rng(seed),
                              SamplingConfig(video_max_seconds=longest))
    shown = truth.seconds(video_id)
    narrated = read = 0
    for pair in pairs:
        step = narrated_step(raw.start, raw.end, truth.caption_steps[video_id],
                             float(starts[pair.text_first]), float(ends[pair.text_last]))
        end = min(pair.video_end, pair.video_start + max_video_len)
        read += end - pair.video_start
        narrated += int(np.sum(shown[pair.video_start:end] == step)) if step >= 0 else 0
    return narrated, read


def check_longer_overlapped_clips(narrated_seconds, read_seconds, folder: PretrainFolder, truth: SyntheticTruth,
                                  video_id: str, seed: int, num_text_clips: int, longest: int = 64) -> Feedback:
    """Exercise 01.1: the narrated-step seconds among the *read* seconds of overlapped clips up to ``longest`` s."""
    if narrated_seconds is None or read_seconds is None:
        return not_answered("01.1", "narrated_seconds and read_seconds")
    narrated, read = narrated_read_seconds(folder, truth, video_id, seed, num_text_clips, longest)
    source = f"the world's truth for the same {num_text_clips} clips (longest={longest})"
    for name, yours, expected in (("your read seconds", read_seconds, read),
                                  ("your narrated-step seconds", narrated_seconds, narrated)):
        verdict = compare_number("01.1", name, yours, expected, source)
        if not verdict.passed:
            if name.startswith("your read") and yours is not None and float(yours) > expected:
                return Feedback("01.1", False, verdict.message + "; the model reads only the first 32 s of a clip")
            return verdict
    return Feedback("01.1", True, f"{narrated} of {read} read seconds show the narrated step ({source})")


def check_another_coin(kept_texts, folder: PretrainFolder, video_id: str, seed: int = 1) -> Feedback:
    """Exercise 01.2: the lines de-duplication keeps with another coin (``seed``)."""
    raw, seconds = _video(folder, video_id)
    clean, _ = clean_captions(raw, num_seconds=seconds)
    expected = dedup_captions(clean, seed=seed).text
    if kept_texts is not None and len(list(kept_texts)) != len(expected):
        return compare_number("01.2", "your number of kept lines", len(list(kept_texts)), len(expected),
                              f"vclip.data.dedup.dedup_captions(seed={seed})")
    return compare_set("01.2", "your kept lines", kept_texts, expected,
                       f"vclip.data.dedup.dedup_captions(seed={seed})")


def check_rule_counts(counts: Mapping[str, int] | None, folder: PretrainFolder, seed: int = 0) -> Feedback:
    """Exercise 01.3: how often each de-duplication rule fires over the training videos."""
    if counts is None:
        return not_answered("01.3", "rule_counts (a dict: rule -> count)")
    expected: Counter = Counter()
    for video_id in folder.train_ids:
        raw, seconds = _video(folder, video_id)
        dedup_captions(clean_captions(raw, num_seconds=seconds)[0], seed=seed, rules=expected)
    unknown = sorted(set(counts) - set(RULES))
    if unknown:
        return Feedback("01.3", False, f"unknown rule names {unknown}; the rules are {list(RULES)}")
    for rule in RULES:
        verdict = compare_number("01.3", f"your count for {rule!r}", counts.get(rule, 0), expected[rule],
                                 f"dedup_captions over the {len(folder.train_ids)} training videos")
        if not verdict.passed:
            return verdict
    return Feedback("01.3", True, "every rule's count matches: " +
                    ", ".join(f"{rule} {expected[rule]}" for rule in RULES))


def check_another_video(raw_lines, kept_lines, folder: PretrainFolder, video_index: int, seed: int = 0) -> Feedback:
    """Exercise 01.4: raw and de-duplicated line counts of another training video."""
    video_id = folder.train_ids[video_index]
    raw, seconds = _video(folder, video_id)
    kept = dedup_captions(clean_captions(raw, num_seconds=seconds)[0], seed=seed)
    for name, yours, expected in (("your raw line count", raw_lines, len(raw.text)),
                                  ("your de-duplicated line count", kept_lines, len(kept.text))):
        verdict = compare_number("01.4", f"{name} for video {video_id}", yours, expected, "the folder")
        if not verdict.passed:
            return verdict
    return Feedback("01.4", True, f"video {video_id}: {len(raw.text)} raw lines, {len(kept.text)} kept")


def exact_clips_over(seconds: int, starts, ends, token_lists, num_pairs: int, seed: int, limit: int = 32) -> int:
    """How many of ``num_pairs`` exactly aligned video clips are longer than ``limit`` seconds."""
    pairs = sample_clip_pairs(seconds, starts, ends, token_lists, num_pairs, np.random.default_rng(seed),
                              SamplingConfig(alignment="exact"))
    return sum(pair.video_end - pair.video_start > limit for pair in pairs)
