"""De-duplication of rolling ASR captions, as the reference does it, made deterministic by a seed.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4.1 pre-trains on HowTo100M ASR captions. YouTube's
automatic captions "roll": each line repeats the tail of the previous one, so consecutive lines
overlap in text and time. Reference: fairseq ``examples/MMPT/mmpt/processors/dedupprocessor.py``
``CaptionDedupProcessor._dedup`` (lines 119-207), run once over ``raw_caption.json``.

For each caption (newlines replaced by spaces, stripped; non-string and empty captions dropped),
compared with the last kept one:

* the previous text *ends with* the new one (a subset): only the previous end time is extended;
* the new text *starts with* the previous one (a superset): the previous caption becomes the new
  text, with the union of the times;
* otherwise the *shortest* prefix of the new text that is a suffix of the previous one (even one
  character, a quirk kept on purpose) is found; if there is one, with probability 1/2 it is cut from
  the front of the new text (which then starts at the previous end), else from the tail of the
  previous text (dropping the previous caption if nothing is left);
* with no such prefix the caption is appended.

Deviation (``DEVIATIONS.md``): the reference draws the coin with the unseeded global ``random``, so
two runs differ. Here each video uses ``random.Random(f"{seed}/{video_id}")`` (``seed=None`` restores
an unseeded draw), so a dataset de-duplicates identically on every run and machine and a video's
result does not depend on the other videos.
"""

from __future__ import annotations

import random
from collections import Counter

from vclip.data.formats import VideoCaptions

RULES = ("subset", "superset", "overlap cut from the new line", "overlap cut from the previous line", "appended")


def _coin(seed: int | None, video_id: str) -> random.Random:
    return random.Random() if seed is None else random.Random(f"{seed}/{video_id}")


def dedup_captions(captions: VideoCaptions, seed: int | None = 0, rules: Counter | None = None) -> VideoCaptions:
    """De-duplicate one video's rolling captions (``dedupprocessor.py`` ``_dedup``).

    Args:
        captions: the raw lines of one video (text may hold non-strings; they are dropped).
        seed: makes the random 50/50 choice deterministic per video; None draws unseeded (the reference).
        rules: if given, a Counter that receives, for every usable line after the first, the rule that
            handled it (one of ``RULES``), so a reader can see which rules a video exercises.
    Returns:
        a new VideoCaptions with the kept lines (start/end in seconds, text stripped).
    Raises:
        ValueError naming the video if a kept caption ends before it starts (the reference asserts).
    """
    rng = _coin(seed, captions.video_id)
    starts: list[float] = []
    ends: list[float] = []
    texts: list[str] = []

    rules = Counter() if rules is None else rules

    def random_merge(end_idx: int, start: float, end: float, text: str) -> None:
        if rng.random() > 0.5:  # the overlap stays with the previous caption: cut it from the new one
            rules["overlap cut from the new line"] += 1
            ends[-1] = max(ends[-1], start)
            rest_text = text[end_idx:].strip()
            if rest_text:
                starts.append(max(ends[-1], start))
                ends.append(max(end, starts[-1]))
                texts.append(rest_text)
        else:  # the overlap goes to the new caption: cut it from the tail of the previous one
            rules["overlap cut from the previous line"] += 1
            left_text = texts[-1][:-end_idx].strip()
            if left_text:
                ends[-1] = min(ends[-1], start)
                texts[-1] = left_text
            else:
                starts.pop()
                ends.pop()
                texts.pop()
            starts.append(start)
            ends.append(end)
            texts.append(text)

    for start, end, text in zip(captions.start, captions.end, captions.text):
        if not isinstance(text, str):
            continue
        text = text.replace("\n", " ").strip()
        if not text:
            continue
        if not texts:  # the first usable caption is kept as it is
            starts.append(start)
            ends.append(end)
            texts.append(text)
            continue
        if texts[-1].endswith(text):  # subset of the previous caption
            rules["subset"] += 1
            ends[-1] = max(ends[-1], end)
        elif text.startswith(texts[-1]):  # superset of the previous caption
            rules["superset"] += 1
            texts[-1] = text
            starts[-1] = min(starts[-1], start)
            ends[-1] = max(ends[-1], end)
        else:  # overlapping or not
            for end_idx in range(1, len(text) + 1):
                if texts[-1].endswith(text[:end_idx]):
                    random_merge(end_idx, start, end, text)
                    break
            else:
                rules["appended"] += 1
                starts.append(start)
                ends.append(end)
                texts.append(text)
        if not (ends[-1] + 0.001 >= starts[-1] and texts[-1]):
            raise ValueError(f"video {captions.video_id!r}: de-duplication produced a caption ending before it "
                             f"starts ({starts[-1]} > {ends[-1]}: {texts[-1]!r}); check the input times")
    return VideoCaptions(captions.video_id, starts, ends, texts)


def dedup_all(captions: dict[str, VideoCaptions], seed: int | None = 0) -> dict[str, VideoCaptions]:
    """:func:`dedup_captions` for every video of a ``raw_caption.json``."""
    return {video_id: dedup_captions(entry, seed) for video_id, entry in captions.items()}
