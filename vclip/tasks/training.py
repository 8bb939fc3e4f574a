"""The training and validation splits of the five fine-tuning tasks, read from their real formats.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (fine-tuned results beside the zero-shot ones).
Reference: fairseq ``examples/MMPT``, ``projects/retri/videoclip/{youcook,vtt,vttqa,coin,crosstask}_
videoclip.yaml`` and the meta processors of ``mmpt/processors/dsprocessor.py``:

=============  =========================================================  =============================
task           training file (in the task folder)                          validation split (vclip)
=============  =========================================================  =============================
``youcook2``   ``youcookii_annotations_trainval.json``, subset "training"  held-out training videos
``msrvtt``     ``MSRVTT_train.9k.csv`` (or ``MSRVTT_train.csv``) +         held-out training videos
               ``MSRVTT_data.json`` sentences
``msrvtt_qa``  the same two files (the reference trains QA on MSR-VTT      held-out training videos
               retrieval)
``coin``       ``COIN.json``, subset "training"                            held-out training videos
``crosstask``  the 30-per-primary-task training part of the reference's    ``videos_val.csv``
               split (:func:`vclip.data.crosstask_split`) and every
               related task
=============  =========================================================  =============================

The reference has no validation split: its fine-tuning "valid" subset is the test file, and it
reports the best checkpoint on the test set (``mmpt_cli/predict.py``). vclip holds out a seeded
fraction of the training *videos* (never splitting a video's clips across the two) for model
selection instead; :mod:`vclip.finetune` offers the reference's rule by name.

Clip and target rules are the zero-shot tasks' (:mod:`vclip.tasks.retrieval`, :mod:`vclip.tasks.coin`,
:mod:`vclip.tasks.crosstask`): a YouCook2 clip is ``features[floor(start):ceil(end)]``; COIN targets
are ``video_targets`` and CrossTask targets ``read_assignment``. Training videos that also appear
in the task's evaluation split are left out and counted (the splits must be disjoint), as are items
whose features are absent.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vclip.data.formats import parse_text, read_csv_rows, read_json, refuse_duplicates
from vclip.data.store import FeatureFolder
from vclip.errors import DataFormatError
from vclip.tasks.coin import COIN_JSON, read_coin, video_targets
from vclip.tasks.common import FEATURES_DIR, require_file
from vclip.tasks.crosstask import RELEASE, crosstask_split, read_assignment, read_crosstask
from vclip.tasks.qa import QA_CSV, read_msrvtt_mc
from vclip.tasks.retrieval import (
    MSRVTT_CSV,
    YOUCOOK_CSV,
    YOUCOOK_JSON,
    read_msrvtt_csv,
    read_youcook_csv,
    read_youcook_json,
)

MSRVTT_TRAIN_LISTS = ("MSRVTT_train.9k.csv", "MSRVTT_train.csv")
MSRVTT_DATA = "MSRVTT_data.json"
SPLITS = ("train", "val")

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# The MSR-VTT training format


def read_msrvtt_train(list_path: str | Path, data_path: str | Path) -> dict[str, list[str]]:
    """MSR-VTT training captions: ``{video_id: [caption, ...]}`` for the videos of the training list.

    ``list_path`` is a CSV with a ``video_id`` column (``MSRVTT_train.9k.csv``, ``MSRVTT_train.csv``);
    ``data_path`` is the official ``MSRVTT_data.json``, whose ``sentences`` are
    ``{"video_id", "caption"}`` records (``sen_id`` and the ``videos`` list are not needed). A listed
    video without a caption, a video listed twice and a ``sen_id`` twice are errors naming them.
    """
    rows = read_csv_rows(list_path, ("video_id",))
    listed = [parse_text(list_path, line, "video_id", row["video_id"]) for line, row in rows]
    refuse_duplicates(list_path, zip((f"line {line} video_id" for line, _ in rows), listed), "video ids")
    data = read_json(Path(data_path))
    sentences = data.get("sentences") if isinstance(data, dict) else None
    if not isinstance(sentences, list):
        raise DataFormatError(data_path, "sentences", "a list of {video_id, caption} records", repr(sentences)[:60])
    refuse_duplicates(data_path, ((f"sentences[{index}].sen_id", str(sentence["sen_id"])) for index, sentence
                                  in enumerate(sentences) if isinstance(sentence, dict) and "sen_id" in sentence),
                      "sen_ids")
    captions: dict[str, list[str]] = {video_id: [] for video_id in listed}
    for index, sentence in enumerate(sentences):
        if not isinstance(sentence, dict) or not isinstance(sentence.get("video_id"), str):
            raise DataFormatError(data_path, f"sentences[{index}].video_id", "a string", repr(sentence)[:60])
        if sentence["video_id"] not in captions:
            continue
        caption = sentence.get("caption")
        if not isinstance(caption, str) or not caption.strip():
            raise DataFormatError(data_path, f"sentences[{index}].caption", "a non-empty string", repr(caption))
        captions[sentence["video_id"]].append(caption.strip())
    without = [video_id for video_id, texts in captions.items() if not texts]
    if without:
        raise DataFormatError(data_path, "sentences", f"a caption for every video of {Path(list_path).name}",
                              f"{len(without)} without, e.g. {without[:3]}")
    return captions


# --------------------------------------------------------------------------------------------------
# Splits


def validation_videos(video_ids, fraction: float, seed: int = 0) -> set[str]:
    """The held-out videos: ``round(fraction * n)`` (at least 1 when fraction > 0 and n > 1) of the
    distinct ``video_ids``, by a seeded permutation of their sorted list (independent of file order)."""
    unique = sorted(set(video_ids))
    if not 0 <= fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {fraction}")
    count = int(round(fraction * len(unique)))
    if fraction > 0 and len(unique) > 1:
        count = max(1, count)
    order = np.random.default_rng([seed, 7919]).permutation(len(unique))
    return {unique[i] for i in order[:count]}


@dataclass
class PairSplit:
    """Clip/caption pairs of a retrieval or QA split (an epoch draws one caption per clip).

    Attributes:
        keys: (video id, first second, end second) of each clip; its rows are ``clips[key]``.
        captions: the candidate captions of each clip (YouCook2: its sentence; MSR-VTT: all of its
            video's captions).
    """

    task: str
    split: str
    keys: list[tuple[str, int, int]]
    captions: list[list[str]]
    clips: dict
    n_items: int = 0
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.keys)


@dataclass
class VideoSplit:
    """Whole videos of a COIN or CrossTask split, with per-second targets.

    Attributes:
        video_ids: the videos (one update each: the reference's batch of 1 video).
        features: video id -> (T, 512).
        targets: video id -> COIN (T,) int64 label ids (0 = background); CrossTask (T, K) uint8.
        texts: CrossTask only: video id -> its task's K step texts.
        num_labels: COIN only: the number of step labels (the head has num_labels + 1 outputs).
    """

    task: str
    split: str
    video_ids: list[str]
    features: dict
    targets: dict
    texts: dict = field(default_factory=dict)
    num_labels: int = 0
    n_items: int = 0
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.video_ids)


def _report_lost_segments(data, path: Path, lost: list[str], labelled: int, noun: str) -> None:
    """Count the labelled segments of a split that start at or after the end of their video's features.

    Slicing past the end gives them no second (in the reference too, without a word): they are left
    out, noted and logged with the file and the count, and a split that loses every labelled segment is an error (its
    head would learn from background alone). ``lost`` names each lost segment; ``labelled`` counts the
    split's segments, lost or not.
    """
    if not lost:
        return
    note = (f"{len(lost)} of {labelled} {noun} in {path} start at or after the end of their video's features "
            f"and are left out (features shorter than the annotations?), e.g. {lost[:3]}")
    if len(lost) == labelled:
        raise DataFormatError(path, f"{noun} of the {data.split} split", "segments that start inside their video's "
                              "features", f"all {labelled} start at or after the end (features shorter than the "
                              "annotations, or extracted at another frame rate?)")
    data.notes.append(note)
    logger.warning("%s %s split: %s", data.task, data.split, note)


def _overlap_note(left_out: list[str], what: str) -> list[str]:
    if not left_out:
        return []
    return [f"{len(left_out)} training videos are also in the {what} evaluation split and were left out "
            f"(the splits must be disjoint), e.g. {left_out[:3]}"]


def load_split(task: str, folder: str | Path, split: str = "train", val_fraction: float = 0.1,
               seed: int = 0, crosstask_n_train: int = 30, crosstask_seed: int = 0):
    """The ``train`` or ``val`` split of ``task`` in its folder: a :class:`PairSplit` (youcook2, msrvtt,
    msrvtt_qa) or a :class:`VideoSplit` (coin, crosstask). ``val_fraction`` and ``seed`` choose the
    held-out videos (CrossTask uses ``videos_val.csv`` instead)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = Path(folder)
    if task == "youcook2":
        return _youcook_split(folder, split, val_fraction, seed)
    if task in ("msrvtt", "msrvtt_qa"):
        return _msrvtt_split(task, folder, split, val_fraction, seed)
    if task == "coin":
        return _coin_split(folder, split, val_fraction, seed)
    if task == "crosstask":
        return _crosstask_split(folder, split, crosstask_n_train, crosstask_seed)
    raise ValueError(f"no fine-tuning recipe for task {task!r}; expected youcook2, msrvtt, msrvtt_qa, coin or crosstask")


def _evaluation_videos(task: str, folder: Path) -> set[str]:
    """The video ids of the task's evaluation file (read without loading any feature)."""
    if task == "youcook2":
        if (folder / YOUCOOK_CSV).is_file():
            return {clip.video_id for clip in read_youcook_csv(folder / YOUCOOK_CSV)}
        return {clip.video_id for clip in read_youcook_json(folder / YOUCOOK_JSON)}
    if task == "msrvtt":
        return {clip.video_id for clip in read_msrvtt_csv(require_file(folder / MSRVTT_CSV, "the JSFusion test CSV"))}
    return {item.video_id for item in read_msrvtt_mc(require_file(folder / QA_CSV, "MSR_MC_test.csv"))}


def _youcook_split(folder: Path, split: str, val_fraction: float, seed: int) -> PairSplit:
    path = require_file(folder / YOUCOOK_JSON, f"{YOUCOOK_JSON} with a 'training' subset (YouCook2 annotations)")
    records = read_youcook_json(path, subset="training")
    if not records:
        raise DataFormatError(path, "database[*].subset", "videos of subset 'training' (the fine-tuning data)",
                              "none")
    evaluated = _evaluation_videos("youcook2", folder)
    held_out = validation_videos([r.video_id for r in records], val_fraction, seed)
    data = PairSplit("youcook2", split, [], [], {}, n_items=0)
    cache = FeatureFolder(folder / FEATURES_DIR)
    left_out, outside, labelled = [], [], 0
    for record in records:
        if (record.video_id in held_out) != (split == "val"):
            continue
        data.n_items += 1
        if record.video_id in evaluated:
            left_out.append(record.video_id)
            continue
        if record.video_id not in cache:
            data.missing.append(record.video_id)
            continue
        labelled += 1
        first, last = int(math.floor(record.start)), int(math.ceil(record.end))
        if first >= cache.num_seconds(record.video_id):
            outside.append(record.clip_id)
            continue
        key = (record.video_id, first, last)
        data.clips[key] = cache.features(record.video_id)[first:last]
        data.keys.append(key)
        data.captions.append([record.text])
    _report_lost_segments(data, path, outside, labelled, "clips")
    data.notes += _overlap_note(sorted(set(left_out)), "youcook2")
    return data


def _msrvtt_split(task: str, folder: Path, split: str, val_fraction: float, seed: int) -> PairSplit:
    lists = [folder / name for name in MSRVTT_TRAIN_LISTS if (folder / name).is_file()]
    if not lists:
        raise DataFormatError(folder / MSRVTT_TRAIN_LISTS[0], "file",
                              f"the MSR-VTT training list ({' or '.join(MSRVTT_TRAIN_LISTS)}, column video_id) "
                              f"beside {MSRVTT_DATA}", "no such file")
    captions = read_msrvtt_train(lists[0], require_file(folder / MSRVTT_DATA, "MSRVTT_data.json (MSR-VTT sentences)"))
    evaluated = _evaluation_videos(task, folder)
    held_out = validation_videos(list(captions), val_fraction, seed)
    data = PairSplit(task, split, [], [], {})
    cache = FeatureFolder(folder / FEATURES_DIR)
    left_out = []
    for video_id, texts in captions.items():
        if (video_id in held_out) != (split == "val"):
            continue
        data.n_items += 1
        if video_id in evaluated:
            left_out.append(video_id)
            continue
        if video_id not in cache:
            data.missing.append(video_id)
            continue
        features = cache.features(video_id)
        key = (video_id, 0, len(features))
        data.clips[key] = features
        data.keys.append(key)
        data.captions.append(texts)
    data.notes += _overlap_note(left_out, task)
    return data


def _coin_split(folder: Path, split: str, val_fraction: float, seed: int) -> VideoSplit:
    path = require_file(folder / COIN_JSON, "COIN.json with a 'training' subset")
    coin = read_coin(path)
    training = [v for v in coin.videos.values() if v.subset == "training"]
    if not training:
        raise DataFormatError(path, "database[*].subset", "videos of subset 'training' (the fine-tuning data)", "none")
    too_high = sorted({s.label_id for v in training for s in v.segments if s.label_id > len(coin.labels)})
    if too_high:
        raise DataFormatError(path, "annotation ids of the training subset",
                              f"label ids 1..{len(coin.labels)} (the labels of the testing subset)",
                              f"ids {too_high[:5]}")
    held_out = validation_videos([v.video_id for v in training], val_fraction, seed)
    data = VideoSplit("coin", split, [], {}, {}, num_labels=len(coin.labels))
    cache = FeatureFolder(folder / FEATURES_DIR)
    outside, labelled = [], 0
    for video in training:
        if (video.video_id in held_out) != (split == "val"):
            continue
        data.n_items += 1  # (disjoint from the testing subset: a video id is one key of the database)
        if video.video_id not in cache:
            data.missing.append(video.video_id)
            continue
        features = cache.features(video.video_id)
        data.video_ids.append(video.video_id)
        data.features[video.video_id] = features
        data.targets[video.video_id] = video_targets(video.segments, len(features))
        labelled += len(video.segments)
        outside += [f"{video.video_id} annotation[{i}]" for i, segment in enumerate(video.segments)
                    if math.floor(segment.start) >= len(features)]
    _report_lost_segments(data, path, outside, labelled, "annotated segments")
    return data


def _crosstask_split(folder: Path, split: str, n_train: int, split_seed: int) -> VideoSplit:
    release = read_crosstask(folder / RELEASE if (folder / RELEASE).is_dir() else folder)
    cache = FeatureFolder(folder / FEATURES_DIR)
    tasks = {**release.related, **release.primary}
    if split == "train":
        chosen, _ = crosstask_split(release, cache.features_dir, n_train=n_train, seed=split_seed)
        pairs = [(task, video) for task, videos in chosen.items() for video in videos]
        listed = len(release.videos)
    else:
        pairs = [(v.task_id, v.video_id) for v in release.val_videos if v.task_id in tasks]
        listed = len(pairs)
    _, test = crosstask_split(release, cache.features_dir, n_train=n_train, seed=split_seed)
    evaluated = {video for videos in test.values() for video in videos}
    data = VideoSplit("crosstask", split, [], {}, {}, n_items=listed)
    left_out, unannotated, outside, labelled = [], [], [], 0
    for task, video in pairs:
        if video in evaluated:
            left_out.append(video)
            continue
        if video not in cache:
            data.missing.append(video)
            continue
        if not release.annotation_path(task, video).is_file():
            unannotated.append(video)
            continue
        features = cache.features(video)
        steps = list(tasks[task].steps)
        segments = release.annotation(task, video)
        data.video_ids.append(video)
        data.features[video] = features
        data.targets[video] = read_assignment(segments, len(features), len(steps))
        data.texts[video] = steps
        labelled += len(segments)
        outside += [f"{task}_{video}.csv segment {i}" for i, segment in enumerate(segments)
                    if math.floor(segment.start) >= len(features)]
    _report_lost_segments(data, release.root / "annotations", outside, labelled, "step segments")
    data.notes += _overlap_note(left_out, "crosstask")
    if unannotated:
        data.notes.append(f"{len(unannotated)} {split} videos have no annotation file and are left out")
    return data


__all__ = ["MSRVTT_DATA", "MSRVTT_TRAIN_LISTS", "PairSplit", "VideoSplit", "load_split", "read_msrvtt_train",
           "validation_videos"]
