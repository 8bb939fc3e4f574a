"""``python -m vclip.data check <folder>``: recognise a dataset layout, validate it, report what is there.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (the pre-training and evaluation datasets).
Reference: the meta processors of fairseq ``examples/MMPT/mmpt/processors/dsprocessor.py`` and
``how2processor.py`` read these layouts; they drop items whose features are missing without saying
so (spec 6.1), which users of the reference trip over (fairseq issues 4734, 5049, 5050). Here every
missing feature is listed by id and every problem names the file, the field and the expectation.

Layouts (see ``data/README.md``): ``pretrain``, ``store``, ``youcook2``, ``msrvtt``, ``msrvtt_qa``,
``crosstask``, ``coin``, ``didemo``, and ``world`` (a synthetic world root: every folder above).
An annotation *file* can be checked too (e.g. the real ``youcook2_validation.csv``); its features
are looked for in ``features/`` beside it unless ``--features`` says otherwise.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from vclip.data.dedup import dedup_captions
from vclip.data.formats import (
    DataFormatError,
    clean_captions,
    load_features,
    read_coin,
    read_crosstask,
    read_didemo,
    read_feature_header,
    read_msrvtt_csv,
    read_msrvtt_mc,
    read_pretrain_folder,
    read_youcook_csv,
    read_youcook_json,
)

# layout -> the file (or folder) that identifies it, in order of precedence
MARKERS = {
    "world": ("WORLD.json",),
    "store": ("STORE.json",),
    "pretrain": ("raw_caption.json",),
    "youcook2": ("validation_youcook.csv", "youcookii_annotations_trainval.json"),
    "msrvtt": ("MSRVTT_JSFUSION_test.csv",),
    "msrvtt_qa": ("MSR_MC_test.csv",),
    "crosstask": ("crosstask_release", "tasks_primary.txt"),
    "coin": ("COIN.json",),
    "didemo": ("test_data.json",),
}
LAYOUTS = tuple(MARKERS)


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


def detect_layout(path: str | Path) -> str:
    """The layout of a folder (by its marker files) or of an annotation file (by name, header or content)."""
    path = Path(path)
    if path.is_dir():
        for layout, markers in MARKERS.items():
            if any((path / marker).exists() for marker in markers):
                return layout
        raise DataFormatError(path, "layout", "a folder holding one of " + ", ".join(
            sorted({m for ms in MARKERS.values() for m in ms})), "none of them")
    if not path.is_file():
        raise DataFormatError(path, "path", "an existing folder or annotation file", "nothing there")
    for layout, markers in MARKERS.items():
        if path.name in markers:
            return layout
    if path.suffix in (".csv", ".tsv"):
        with open(path, newline="") as handle:
            header = handle.readline()
        columns = set(next(csv.reader([header], delimiter="\t" if "\t" in header else ",")))
        if {"end", "start", "text", "video_id"} <= columns:
            return "youcook2"
        if {"video_id", "sentence"} <= columns:
            return "msrvtt"
        if {"vid_key", "a1", "answer"} <= columns:
            return "msrvtt_qa"
    if path.suffix == ".json":
        with open(path) as handle:
            try:
                data = json.load(handle)
            except json.JSONDecodeError as error:
                raise DataFormatError(path, "content", "valid JSON", str(error)) from None
        if isinstance(data, list):
            return "didemo"
        database = data.get("database") if isinstance(data, dict) else None
        if isinstance(database, dict):
            first = next(iter(database.values()), {})
            return "youcook2" if "annotations" in first else "coin"
        if isinstance(data, dict):
            return "pretrain"
    raise DataFormatError(path, "layout", "a known annotation file (YouCook2/MSR-VTT CSV, COIN.json, "
                          "test_data.json, raw_caption.json...)", "an unrecognised file")


def _check_videos(report: Report, features_dir: Path, video_ids, check_values: bool) -> dict[str, int]:
    """Validate the feature file of every video id; returns {video id: seconds} of the usable ones."""
    seconds: dict[str, int] = {}
    for video_id in dict.fromkeys(video_ids):
        path = features_dir / f"{video_id}.npy"
        try:
            if not path.is_file():
                report.missing_features.append(video_id)
                continue
            seconds[video_id] = len(load_features(path)) if check_values else read_feature_header(path).num_seconds
        except DataFormatError as error:
            report.problems.append(str(error))
    report.counts["videos"] = len(dict.fromkeys(video_ids))
    report.counts["videos with usable features"] = len(seconds)
    report.counts["seconds"] = sum(seconds.values())
    return seconds



def _check_whole_video_items(report, features_dir, items, noun: str, check_values: bool) -> None:
    """Count the items (each one whole video, by ``video_id``) and those whose features are usable."""
    report.counts[noun] = len(items)
    seconds = _check_videos(report, features_dir, [item.video_id for item in items], check_values)
    report.usable_items = sum(item.video_id in seconds for item in items)
    report.counts[f"{noun} with features"] = report.usable_items

def _segments_inside(report: Report, items, seconds: dict[str, int], name: str) -> int:
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


def _check_pretrain(report: Report, folder: Path, check_values: bool, dedup_seed: int) -> None:
    data = read_pretrain_folder(folder)
    report.counts["train videos listed"] = len(data.train_ids)
    report.counts["val videos listed"] = len(data.val_ids)
    seconds = _check_videos(report, data.features_dir, data.train_ids + data.val_ids, check_values)
    raw = kept = deduped = 0
    drops: Counter = Counter()
    no_captions = []
    for video_id, num_seconds in seconds.items():
        captions = data.captions[video_id]
        raw += len(captions)
        clean, counts = clean_captions(captions, num_seconds)
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
        report.notes.append(f"{count} captions: {reason}")
    if no_captions:
        report.notes.append(f"{len(no_captions)} videos have no usable caption (left out): {no_captions[:10]}")
    if len(data.train_ids) % 256:
        report.notes.append(f"the reference keeps a multiple of 256 train videos (groups of 32, 8 GPUs): "
                            f"{len(data.train_ids)} -> {len(data.train_ids) // 256 * 256}")
    report.usable_items = len(seconds) - len(no_captions)


def _check_store(report: Report, folder: Path) -> None:
    import numpy as np

    from vclip.data.store import FeatureStore

    store = FeatureStore(folder)
    for split, totals in store.info.get("totals", {}).items():
        for key, value in totals.items():
            report.counts[f"{split} {key}"] = value
    for reason, ids in store.skipped.items():
        report.notes.append(f"{len(ids)} videos left out when built ({reason}): {ids[:10]}")
    for split in store.info["splits"]:
        meta = json.loads((folder / f"{split}_meta.json").read_text())
        for shard, ids in meta.items():
            for kind in ("video", "startends", "caps_ids"):
                prefix = store._file(split, int(shard), kind)
                try:
                    starts = np.load(f"{prefix}_starts.npy")
                    data = np.load(f"{prefix}_data.npy", mmap_mode="r")
                except (OSError, ValueError) as error:
                    report.problems.append(f"FATAL {prefix}_data.npy: shard: expected a readable .npy, found {error}")
                    continue
                if len(starts) != len(ids) + 1 or starts[-1] != len(data):
                    report.problems.append(f"FATAL {prefix}_starts.npy: offsets: expected {len(ids) + 1} offsets "
                                           f"ending at {len(data)} rows, found {len(starts)} ending at {starts[-1]}")
    report.usable_items = len(store)


def check_path(path: str | Path, layout: str | None = None, features: str | Path | None = None,
               check_values: bool = True, dedup_seed: int = 0) -> list[Report]:
    """Check a folder or annotation file; a synthetic world root gives one report per folder."""
    path = Path(path)
    layout = layout or detect_layout(path)
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    if layout == "world":
        return [r for child in sorted(p for p in path.iterdir() if p.is_dir())
                for r in check_path(child, None, None, check_values, dedup_seed)]
    folder = path if path.is_dir() else path.parent
    features_dir = Path(features) if features else folder / "features"
    report = Report(path, layout)
    try:
        _check_layout(report, path, folder, layout, features_dir, check_values, dedup_seed)
        if path.is_dir() and not features:
            _check_training_split(report, folder, layout)
    except DataFormatError as error:
        report.problems.append(f"FATAL {error}")
    if report.missing_features and report.usable_items == 0:
        report.problems.append(f"FATAL {features_dir}: features: expected <video_id>.npy for the listed videos, "
                               f"found none of {len(report.missing_features)}")
    return [report]


def _first(folder: Path, names: tuple[str, ...]) -> Path:
    return next((folder / n for n in names if (folder / n).exists()), folder / names[0])


def _check_layout(report: Report, path: Path, folder: Path, layout: str, features_dir: Path,
                  check_values: bool, dedup_seed: int) -> None:
    if layout == "pretrain":
        _check_pretrain(report, folder, check_values, dedup_seed)
    elif layout == "store":
        _check_store(report, folder)
    elif layout == "youcook2":
        file = path if path.is_file() else _first(folder, MARKERS["youcook2"])
        clips = read_youcook_json(file) if file.suffix == ".json" else read_youcook_csv(file)
        report.counts["clips"] = len(clips)
        seconds = _check_videos(report, features_dir, [c.video_id for c in clips], check_values)
        report.usable_items = _segments_inside(report, [(c.video_id, c.start) for c in clips], seconds, "clips")
        report.counts["clips with features"] = report.usable_items
    elif layout == "msrvtt":
        file = path if path.is_file() else folder / "MSRVTT_JSFUSION_test.csv"
        _check_whole_video_items(report, features_dir, read_msrvtt_csv(file), "clips", check_values)
    elif layout == "msrvtt_qa":
        file = path if path.is_file() else folder / "MSR_MC_test.csv"
        _check_whole_video_items(report, features_dir, read_msrvtt_mc(file), "items", check_values)
    elif layout == "crosstask":
        _check_crosstask(report, folder, features_dir, check_values)
    elif layout == "coin":
        file = path if path.is_file() else folder / "COIN.json"
        coin = read_coin(file)
        testing = coin.testing()
        report.counts["testing videos"] = len(testing)
        report.counts["labels"] = len(coin.labels)
        seconds = _check_videos(report, features_dir, [v.video_id for v in testing], check_values)
        report.usable_items = len(seconds)
        if seconds:
            labelled = sum(min(math.ceil(s.end), seconds[v.video_id]) - min(math.floor(s.start), seconds[v.video_id])
                           for v in testing if v.video_id in seconds for s in v.segments)
            report.counts["background fraction (testing)"] = round(1 - labelled / max(1, sum(seconds.values())), 3)
    elif layout == "didemo":
        file = path if path.is_file() else folder / "test_data.json"
        queries = read_didemo(file)
        report.counts["queries"] = len(queries)
        seconds = _check_videos(report, features_dir, [q.video for q in queries], check_values)
        report.usable_items = sum(q.video in seconds for q in queries)
        report.counts["queries with features"] = report.usable_items
        long = sum(1 for s in seconds.values() if s > 30)
        if long:
            report.notes.append(f"{long} videos are longer than 30 s (the reference uses the first 30 s: 6 chunks)")


def _check_crosstask(report: Report, folder: Path, features_dir: Path, check_values: bool) -> None:
    from vclip.data.formats import crosstask_split

    release = read_crosstask(folder)
    report.counts["primary tasks"] = len(release.primary)
    report.counts["related tasks"] = len(release.related)
    report.counts["videos listed"] = len(release.videos)
    seconds = _check_videos(report, features_dir, [v.video_id for v in release.videos], check_values)
    missing_annotations = []
    for video in release.videos:
        if not release.annotation_path(video.task_id, video.video_id).exists():
            missing_annotations.append(f"{video.task_id}_{video.video_id}")
            continue
        try:
            release.annotation(video.task_id, video.video_id)
        except DataFormatError as error:
            report.problems.append(str(error))
    if missing_annotations:
        report.notes.append(f"{len(missing_annotations)} listed videos have no annotations/<task>_<vid>.csv "
                            f"(the reference leaves them out): {missing_annotations[:10]}")
    unknown = sorted({v.task_id for v in release.videos} - set(release.primary) - set(release.related))
    if unknown:
        report.notes.append(f"videos.csv names tasks in neither tasks file (left out): {unknown[:10]}")
    train, test = crosstask_split(release, features_dir)
    report.counts["test videos (reference split: 30 train per primary task)"] = sum(len(v) for v in test.values())
    report.usable_items = sum(len(v) for v in test.values())
    if not report.usable_items and seconds:
        report.problems.append(f"FATAL {release.root / 'videos.csv'}: videos per primary task: expected more than "
                               f"30 with features and annotations (the reference trains on 30 and tests on the "
                               f"rest), found {max((len(v) for v in train.values()), default=0)} at most")


TRAINING_MARKERS = {  # the fine-tuning data of a task folder (vclip.tasks.training)
    "youcook2": ("youcookii_annotations_trainval.json",), "msrvtt": ("MSRVTT_train.9k.csv", "MSRVTT_train.csv"),
    "msrvtt_qa": ("MSRVTT_train.9k.csv", "MSRVTT_train.csv"), "coin": ("COIN.json",),
    "crosstask": ("crosstask_release", "videos.csv"),
}


def _check_training_split(report: Report, folder: Path, layout: str) -> None:
    """Count the training and validation items ``vclip.finetune`` would use (none is not a problem:
    a folder may hold the evaluation split only)."""
    if layout not in TRAINING_MARKERS or not any((folder / m).exists() for m in TRAINING_MARKERS[layout]):
        return
    from vclip.tasks.training import load_split

    if layout == "coin" and not any(v.subset == "training" for v in read_coin(folder / "COIN.json").videos.values()):
        report.notes.append("no training videos (COIN.json has no 'training' subset): vclip.finetune cannot run here")
        return
    if layout == "youcook2" and not read_youcook_json(folder / "youcookii_annotations_trainval.json", "training"):
        report.notes.append("no training clips (no 'training' subset in youcookii_annotations_trainval.json): "
                            "vclip.finetune cannot run here")
        return
    for split in ("train", "val"):
        try:
            data = load_split(layout, folder, split)
        except DataFormatError as error:  # a broken training file or feature: a problem, not the folder's end
            report.problems.append(f"fine-tuning {split} split: {error}")
            continue
        report.counts[f"fine-tuning {split} items"] = len(data)
        if data.missing:
            report.missing_features += [v for v in dict.fromkeys(data.missing) if v not in report.missing_features]
            report.notes.append(f"fine-tuning {split} split: {len(data.missing)} items without features (skipped)")
        report.notes += [f"fine-tuning {split} split: {note}" for note in data.notes]
