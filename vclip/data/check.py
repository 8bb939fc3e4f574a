"""The checks a data folder's report is made of: the report, feature files, the pre-training folder, the store.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (the pre-training and evaluation datasets).
Reference: the meta processors of fairseq ``examples/MMPT/mmpt/processors/dsprocessor.py`` and
``how2processor.py`` read these layouts; they drop items whose features are missing without saying
so (``dsprocessor.py`` lines 279-302 for YouCook2), which users of the reference trip over (fairseq issues
4734, 5049, 5050). Here every missing feature is listed by id and every problem names the file, the
field and the expectation.

The tasks' own checks (``Task.check``) are made of :class:`Report`, :func:`check_videos` and the helpers
below; recognising a folder's layout and dispatching to the pre-training folder, the store or a
registered task is :mod:`vclip.tasks.check` (above the tasks), behind ``python -m vclip.data check``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from vclip.data.dedup import dedup_captions
from vclip.data.formats import (
    clean_captions,
    load_features,
    read_feature_header,
    read_pretrain_folder,
)
from vclip.errors import DataFormatError
from vclip.tokenizer import special_token_texts


@dataclass
class Report:
    """What :func:`check_path` found in one folder or file."""

    path: Path
    layout: str
    counts: dict[str, int | float] = field(default_factory=dict)  # videos, seconds, captions, clips...
    missing_features: list[str] = field(default_factory=list)  # video ids without a feature file
    problems: list[str] = field(default_factory=list)  # errors: file, field, expectation
    notes: list[str] = field(default_factory=list)  # counted skips and facts worth knowing
    usable_items: int = 0  # items (clips, captions' videos, queries...) that can be used

    @property
    def usable(self) -> bool:
        return self.usable_items > 0 and not any(p.startswith("FATAL") for p in self.problems)

    def format(self, list_missing: int = 20) -> str:
        lines = [f"{self.path}  [{self.layout}]  {'usable' if self.usable else 'NOT USABLE'}"]
        lines += [f"  {key}: {value}" for key, value in self.counts.items()]
        if self.missing_features:
            shown = self.missing_features if list_missing < 0 else self.missing_features[:list_missing]
            more = len(self.missing_features) - len(shown)
            lines.append(f"  missing features ({len(self.missing_features)} videos): " + ", ".join(shown)
                         + (f", ... and {more} more (--list-missing shows all)" if more else ""))
        lines += [f"  problem: {p}" for p in self.problems]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


SHOW = 5  # examples named in a note (the count is always given)


def _examples(items: list, show: int = SHOW) -> str:
    shown = ", ".join(str(item) for item in items[:show])
    return shown + (f", ... ({len(items) - show} more)" if len(items) > show else "")


def check_videos(report: Report, features_dir: Path, video_ids, check_values: bool) -> dict[str, int]:
    """Validate the feature file of every video id; returns {video id: seconds} of the usable ones."""
    seconds: dict[str, int] = {}
    broken = []
    for video_id in dict.fromkeys(video_ids):
        path = features_dir / f"{video_id}.npy"
        try:
            if not path.is_file():
                report.missing_features.append(video_id)
                continue
            seconds[video_id] = len(load_features(path)) if check_values else read_feature_header(path).num_seconds
        except DataFormatError as error:
            report.problems.append(str(error))
            broken.append(video_id)
    if broken:
        report.notes.append(f"{len(broken)} videos have an unusable feature file (problems above); training and "
                            f"evaluation leave them out and count them: {_examples(broken)}")
    report.counts["videos"] = len(dict.fromkeys(video_ids))
    report.counts["videos with usable features"] = len(seconds)
    report.counts["seconds"] = sum(seconds.values())
    return seconds


def check_whole_video_items(report, features_dir, items, noun: str, check_values: bool) -> None:
    """Count the items (each one whole video, by ``video_id``) and those whose features are usable."""
    report.counts[noun] = len(items)
    seconds = check_videos(report, features_dir, [item.video_id for item in items], check_values)
    report.usable_items = sum(item.video_id in seconds for item in items)
    report.counts[f"{noun} with features"] = report.usable_items


def count_segments_inside(report: Report, items, seconds: dict[str, int], name: str) -> int:
    """Count segments whose video is usable and which start inside it (others are noted)."""
    usable = outside = 0
    for video_id, start in items:
        if video_id not in seconds:
            continue
        if start >= seconds[video_id]:
            outside += 1
            continue
        usable += 1
    if outside:
        report.notes.append(f"{outside} {name} start at or after the end of their video's features (unusable)")
    return usable


def note_special_tokens(report: Report, texts, noun: str) -> None:
    """Count texts spelling [SEP], [CLS], [PAD], [MASK] or [UNK] (tokenised as ordinary words), naming a few."""
    found, spelled = [], Counter()
    for where, text in texts:
        tokens = special_token_texts(text)
        if tokens:
            found.append(where)
            spelled.update(tokens)
    if found:
        which = ", ".join(f"{token} x{count}" for token, count in sorted(spelled.items()))
        report.notes.append(f"{len(found)} {noun} spell special tokens ({which}); they are tokenised as ordinary "
                            f"words in training and evaluation alike: {_examples(found)}")


def check_pretrain(report: Report, folder: Path, check_values: bool, dedup_seed: int) -> None:
    data = read_pretrain_folder(folder)
    report.counts["train videos listed"] = len(data.train_ids)
    report.counts["val videos listed"] = len(data.val_ids)
    seconds = check_videos(report, data.features_dir, data.train_ids + data.val_ids, check_values)
    raw = kept = deduped = 0
    drops: Counter = Counter()
    dropped_rows: dict[str, list[str]] = {}  # reason -> "video row N"
    no_captions = []
    for video_id, num_seconds in seconds.items():
        captions = data.captions[video_id]
        raw += len(captions)
        dropped: list = []
        clean, counts = clean_captions(captions, num_seconds, dropped)
        for row, reason in dropped:
            dropped_rows.setdefault(reason, []).append(f"{video_id} row {row}")
        drops.update(counts)
        kept += len(clean)
        deduped_here = len(dedup_captions(clean, dedup_seed))
        deduped += deduped_here
        if deduped_here == 0:
            no_captions.append(video_id)
    report.counts["captions (raw)"] = raw
    report.counts["captions after cleaning"] = kept
    report.counts["captions after de-duplication"] = deduped
    for reason, count in sorted(drops.items()):
        named = f" (dropped): {_examples(dropped_rows[reason])}" if reason in dropped_rows else ""
        report.notes.append(f"{count} captions: {reason}{named}")
    note_special_tokens(report, ((f"{vid} row {row}", text) for vid in seconds
                                  for row, text in enumerate(data.captions[vid].text)), "captions")
    if no_captions:
        report.notes.append(f"{len(no_captions)} videos have no usable caption (left out): {no_captions[:10]}")
    if len(data.train_ids) % 256:
        report.notes.append(f"the reference keeps a multiple of 256 train videos (groups of 32, 8 GPUs): "
                            f"{len(data.train_ids)} -> {len(data.train_ids) // 256 * 256}")
    report.usable_items = len(seconds) - len(no_captions)


def check_store(report: Report, folder: Path) -> None:
    """Open the store as training opens it (:class:`vclip.data.store.FeatureStore` validates the meta files
    and every shard's offsets): a store that fails here fails ``vclip.pretrain`` with the same message."""
    from vclip.data.store import FeatureStore

    store = FeatureStore(folder)
    for split, totals in store.info.get("totals", {}).items():
        for key, value in totals.items():
            report.counts[f"{split} {key}"] = value
    for reason, ids in store.skipped.items():
        report.notes.append(f"{len(ids)} videos left out when built ({reason}): {ids[:10]}")
    report.usable_items = len(store)
