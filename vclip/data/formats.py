"""Readers and validation for every dataset layout the kit reads.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (pre-training on HowTo100M; zero-shot evaluation
on YouCook2, MSR-VTT, MSR-VTT QA, CrossTask, COIN, DiDeMo). Reference: fairseq ``examples/MMPT``,
``mmpt/processors/dsprocessor.py`` (the meta processors of every end task), ``how2processor.py``
(``raw_caption.json``, feature ``.npy`` files) and ``scripts/video_feature_extractor/extract.py``
(features: one L2-normalised 512-d S3D vector per second, float16). The layouts are described in
``data/README.md`` and in sections 6 and 7 of ``spec/videoclip_reference.md``.

Every reader takes a file path and returns simple dataclasses. Structural problems (a missing column,
a malformed row, a JSON value of the wrong type, a duplicated id) raise :class:`DataFormatError`,
whose message names the file, the field and what was expected. Item-level problems that the
reference tolerates (a caption with empty text, a caption after the end of the video) are dropped by
:func:`clean_captions` and *counted*, never silently skipped.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FEATURE_DIM = 512  # S3D ``video_embedding`` width (spec 7.1); 1024 would be mixed_5c, the wrong layer
FEATURE_DTYPES = (np.dtype(np.float16), np.dtype(np.float32))


class DataFormatError(ValueError):
    """A data file that cannot be used; the message names the file, the field and the expectation."""

    def __init__(self, path: str | Path, field_name: str, expected: str, found: str | None = None):
        self.path = str(path)
        self.field = field_name
        self.expected = expected
        self.found = found
        message = f"{self.path}: {field_name}: expected {expected}"
        if found is not None:
            message += f", found {found}"
        super().__init__(message)


# --------------------------------------------------------------------------------------------------
# Features: ``features/<video_id>.npy``, shape (seconds, 512), float16 or float32


@dataclass(frozen=True)
class FeatureHeader:
    """What the ``.npy`` header of a feature file says, checked against the file size."""

    path: Path
    shape: tuple[int, ...]
    dtype: np.dtype
    data_offset: int  # bytes before the array data

    @property
    def num_seconds(self) -> int:
        return int(self.shape[0])


def read_feature_header(path: str | Path, dim: int = FEATURE_DIM) -> FeatureHeader:
    """Read and validate the header of one feature file without reading its data.

    Checks: the file exists, is a ``.npy`` file, holds a C-ordered 2-D array of shape (T >= 1, ``dim``)
    of float16 or float32, and is long enough for that array (a truncated copy fails here).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file", "a feature file (seconds, 512)", "no such file")
    with open(path, "rb") as handle:
        try:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        except (ValueError, OSError, SyntaxError, EOFError) as error:
            raise DataFormatError(path, "header", "a valid .npy header", f"unreadable ({error})") from None
        offset = handle.tell()
    if len(shape) != 2 or shape[1] != dim:
        hint = " (1024 is S3D's mixed_5c layer; VideoCLIP uses the 512-d video_embedding)" if (
            len(shape) == 2 and shape[1] == 1024) else ""
        raise DataFormatError(path, "shape", f"(seconds, {dim})", f"{tuple(shape)}{hint}")
    if shape[0] < 1:
        raise DataFormatError(path, "shape", "at least one second of features", f"{tuple(shape)}")
    if np.dtype(dtype) not in FEATURE_DTYPES:
        raise DataFormatError(path, "dtype", "float16 or float32", str(np.dtype(dtype)))
    if fortran:
        raise DataFormatError(path, "fortran_order", "a C-ordered array", "Fortran order")
    needed = offset + int(np.prod(shape)) * np.dtype(dtype).itemsize
    size = path.stat().st_size
    if size < needed:
        raise DataFormatError(path, "data", f"{needed} bytes for shape {tuple(shape)} (truncated copy?)",
                              f"{size} bytes")
    return FeatureHeader(path, tuple(int(s) for s in shape), np.dtype(dtype), offset)


def load_features(path: str | Path, dim: int = FEATURE_DIM, mmap: bool = False,
                  check_finite: bool = True) -> np.ndarray:
    """Load one feature file, shape (T, ``dim``), in its stored dtype, after validating it.

    ``mmap=True`` returns a read-only memory map (nothing is read until sliced). ``check_finite``
    reads the values once and rejects NaN/inf, naming the first bad second.
    """
    header = read_feature_header(path, dim)
    array = np.load(header.path, mmap_mode="r" if mmap else None, allow_pickle=False)
    if check_finite:
        finite = np.isfinite(array).all(axis=1)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise DataFormatError(header.path, "values", "finite numbers",
                                  f"NaN/inf in {len(bad)} of {len(finite)} seconds (first: second {bad[0]})")
    return array


# --------------------------------------------------------------------------------------------------
# Pre-training folder (HowTo100M style): features/, raw_caption.json, train.lst, val.lst


@dataclass
class VideoCaptions:
    """The ASR lines of one video, as in ``raw_caption.json`` (times in seconds)."""

    video_id: str
    start: list[float]
    end: list[float]
    text: list  # str in a valid file; anything else is dropped by clean_captions (and counted)

    def __len__(self) -> int:
        return len(self.start)


def read_raw_caption(path: str | Path) -> dict[str, VideoCaptions]:
    """Read ``raw_caption.json`` = ``{video_id: {"start": [s], "end": [s], "text": [str]}}``."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DataFormatError(path, "top level", "an object {video_id: {start, end, text}}", type(data).__name__)
    captions = {}
    for video_id, entry in data.items():
        where = f"[{video_id!r}]"
        if not isinstance(entry, dict):
            raise DataFormatError(path, where, "an object with start, end, text", type(entry).__name__)
        for key in ("start", "end", "text"):
            if not isinstance(entry.get(key), list):
                raise DataFormatError(path, f"{where}.{key}", "a list", repr(entry.get(key))[:60])
        lengths = {key: len(entry[key]) for key in ("start", "end", "text")}
        if len(set(lengths.values())) != 1:
            raise DataFormatError(path, where, "start, end and text of equal length", str(lengths))
        for key in ("start", "end"):
            for i, value in enumerate(entry[key]):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise DataFormatError(path, f"{where}.{key}[{i}]", "a finite number of seconds", repr(value))
        captions[video_id] = VideoCaptions(video_id, [float(s) for s in entry["start"]],
                                           [float(e) for e in entry["end"]], list(entry["text"]))
    return captions


def clean_captions(captions: VideoCaptions, num_seconds: int | None = None,
                   dropped: list | None = None) -> tuple[VideoCaptions, Counter]:
    """Drop the caption lines that cannot be used, and count why.

    Dropped (as the reference's dedup drops the first two): non-string text, empty text (after
    newlines become spaces and the text is stripped), end < start, and (when ``num_seconds`` is
    given) a start at or after the end of the video's features. A line that starts inside the video
    and ends after it is kept with its end clamped to ``num_seconds`` and counted as
    ``"end clamped to the video length"`` (the reference clamps the sampled clip the same way).
    Returns the kept lines and a Counter {reason: count}; ``dropped``, when given, receives
    ``(row, reason)`` for each dropped line (row: its 0-based position in ``captions``).
    """
    counts: Counter = Counter()
    kept = VideoCaptions(captions.video_id, [], [], [])
    for row, (start, end, text) in enumerate(zip(captions.start, captions.end, captions.text)):
        if not isinstance(text, str):
            reason = "non-string text"
        elif not text.replace("\n", " ").strip():
            reason = "empty text"
        elif end < start:
            reason = "end before start"
        elif num_seconds is not None and start >= num_seconds:
            reason = "starts after the video ends"
        else:
            reason = None
        if reason is not None:
            counts[reason] += 1
            if dropped is not None:
                dropped.append((row, reason))
            continue
        if num_seconds is not None and end > num_seconds:
            counts["end clamped to the video length"] += 1
            end = float(num_seconds)
        kept.start.append(start)
        kept.end.append(end)
        kept.text.append(text)
    return kept, counts


def read_id_list(path: str | Path) -> list[str]:
    """Read a video id list (``train.lst``/``val.lst``): one id per line; blank lines are ignored.

    A duplicated id raises (the reference would silently train on it twice).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file", "a list of video ids, one per line", "no such file")
    ids, first_line = [], {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        video_id = line.strip()
        if not video_id:
            continue
        if video_id in first_line:
            raise DataFormatError(path, f"line {number}", "unique video ids",
                                  f"{video_id!r} already on line {first_line[video_id]}")
        first_line[video_id] = number
        ids.append(video_id)
    return ids


@dataclass
class PretrainFolder:
    """A HowTo100M-style pre-training folder."""

    root: Path
    train_ids: list[str]
    val_ids: list[str]
    captions: dict[str, VideoCaptions]

    @property
    def features_dir(self) -> Path:
        return self.root / "features"

    def feature_path(self, video_id: str) -> Path:
        return self.features_dir / f"{video_id}.npy"

    def split_ids(self, split: str) -> list[str]:
        """The ids of ``train`` or ``val`` (``valid`` and ``test`` map to ``val``, as in the reference)."""
        if split == "train":
            return self.train_ids
        if split in ("val", "valid", "test"):
            return self.val_ids
        raise ValueError(f"split: expected 'train' or 'val' ('valid'/'test' map to 'val'), got {split!r}")


def read_pretrain_folder(root: str | Path) -> PretrainFolder:
    """Read ``raw_caption.json``, ``train.lst`` and ``val.lst`` of a pre-training folder (not the features)."""
    root = Path(root)
    train_ids = read_id_list(root / "train.lst")
    val_path = root / "val.lst"
    val_ids = read_id_list(val_path) if val_path.exists() else []
    both = sorted(set(train_ids) & set(val_ids))
    if both:
        raise DataFormatError(val_path, "video ids", "no id in both train.lst and val.lst",
                              f"{len(both)} shared, e.g. {both[:3]}")
    captions = read_raw_caption(root / "raw_caption.json")
    missing = [v for v in train_ids + val_ids if v not in captions]
    if missing:
        raise DataFormatError(root / "raw_caption.json", "video ids", "an entry for every listed video",
                              f"{len(missing)} listed ids without captions, e.g. {missing[:3]}")
    return PretrainFolder(root, train_ids, val_ids, captions)


# --------------------------------------------------------------------------------------------------
# YouCook2: validation_youcook.csv (MIL-NCE) and youcookii_annotations_trainval.json (official)


@dataclass
class YoucookClip:
    """One annotated step segment: the clip is ``features[start:end]`` of the whole video."""

    video_id: str
    start: float
    end: float
    text: str
    task: str  # recipe type, e.g. "226"
    clip_index: int  # index of the segment within its video (the reference's id "<video>_<index>")

    @property
    def clip_id(self) -> str:
        return f"{self.video_id}_{self.clip_index}"


YOUCOOK_COLUMNS = ("end", "start", "task", "text", "video_id")


def read_youcook_csv(path: str | Path) -> list[YoucookClip]:
    """Read the YouCook2 validation CSV (columns ``end,start,task,text,video_id``), one clip per row."""
    rows = _read_csv(path, YOUCOOK_COLUMNS)
    clips, per_video = [], Counter()
    for line, row in rows:
        start = _number(path, line, "start", row["start"])
        end = _number(path, line, "end", row["end"])
        _check_segment(path, line, start, end)
        text = _text(path, line, "text", row["text"])
        video_id = _text(path, line, "video_id", row["video_id"])
        clips.append(YoucookClip(video_id, start, end, text, row["task"].strip(), per_video[video_id]))
        per_video[video_id] += 1
    return clips


def read_youcook_json(path: str | Path, subset: str = "validation") -> list[YoucookClip]:
    """Read ``youcookii_annotations_trainval.json`` (``{"database": {vid: {"subset", "recipe_type",
    "annotations": [{"id", "segment": [s, e], "sentence"}]}}}``), keeping one ``subset``."""
    path = Path(path)
    data = _read_json(path)
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict):
        raise DataFormatError(path, "database", "an object {video_id: {...}}", repr(database)[:60])
    clips = []
    for video_id, video in database.items():
        where = f"database[{video_id!r}]"
        if not isinstance(video, dict) or not isinstance(video.get("annotations"), list):
            raise DataFormatError(path, f"{where}.annotations", "a list of segments", repr(video)[:60])
        if video.get("subset") != subset:
            continue
        for index, ann in enumerate(video["annotations"]):
            field_name = f"{where}.annotations[{index}]"
            segment = ann.get("segment") if isinstance(ann, dict) else None
            if not (isinstance(segment, list) and len(segment) == 2
                    and all(isinstance(x, (int, float)) for x in segment)):
                raise DataFormatError(path, f"{field_name}.segment", "[start, end] in seconds", repr(segment))
            _check_segment(path, field_name, float(segment[0]), float(segment[1]))
            sentence = ann.get("sentence")
            if not isinstance(sentence, str) or not sentence.strip():
                raise DataFormatError(path, f"{field_name}.sentence", "a non-empty string", repr(sentence))
            clips.append(YoucookClip(video_id, float(segment[0]), float(segment[1]), sentence.strip(),
                                     str(video.get("recipe_type", "")), index))
    return clips


# --------------------------------------------------------------------------------------------------
# MSR-VTT: MSRVTT_JSFUSION_test.csv and MSR_MC_test.csv


@dataclass
class MsrvttClip:
    key: str  # "ret0"
    vid_key: str  # "msr9770"
    video_id: str  # "video9770" = the feature file name
    sentence: str


MSRVTT_COLUMNS = ("key", "vid_key", "video_id", "sentence")


def read_msrvtt_csv(path: str | Path) -> list[MsrvttClip]:
    """Read the JSFusion 1k-A test CSV (columns ``key,vid_key,video_id,sentence``)."""
    return [MsrvttClip(row["key"].strip(), row["vid_key"].strip(), _text(path, line, "video_id", row["video_id"]),
                       _text(path, line, "sentence", row["sentence"]))
            for line, row in _read_csv(path, MSRVTT_COLUMNS)]


@dataclass
class MultipleChoice:
    """One MSR-VTT multiple-choice item: five candidate sentences, ``answer`` is the 0-based index."""

    vid_key: str  # "msr7020"
    video_id: str  # "video7020", the reference's mapping msr -> video
    candidates: list[str]
    answer: int


MSRVTT_QA_COLUMNS = ("vid_key", "a1", "a2", "a3", "a4", "a5", "answer")


def read_msrvtt_mc(path: str | Path) -> list[MultipleChoice]:
    """Read ``MSR_MC_test.csv``: tab-separated ``vid_key, a1..a5, answer`` (0-based)."""
    items = []
    for line, row in _read_csv(path, MSRVTT_QA_COLUMNS, delimiter="\t"):
        vid_key = _text(path, line, "vid_key", row["vid_key"])
        candidates = [_text(path, line, f"a{i}", row[f"a{i}"]) for i in range(1, 6)]
        answer = row["answer"].strip()
        if answer not in {"0", "1", "2", "3", "4"}:
            raise DataFormatError(path, f"line {line} answer", "a 0-based index 0..4", repr(row["answer"]))
        items.append(MultipleChoice(vid_key, vid_key.replace("msr", "video"), candidates, int(answer)))
    return items


# --------------------------------------------------------------------------------------------------
# CrossTask: crosstask_release/{tasks_primary.txt, tasks_related.txt, videos.csv, videos_val.csv, annotations/}


@dataclass
class CrossTaskTask:
    task_id: str
    title: str
    url: str
    steps: list[str]  # step k (1-based in the annotation files) is steps[k - 1]


@dataclass
class CrossTaskVideo:
    task_id: str
    video_id: str
    url: str


@dataclass
class StepSegment:
    step: int  # 1-based index into the task's steps
    start: float
    end: float


@dataclass
class CrossTaskRelease:
    root: Path  # the crosstask_release folder
    primary: dict[str, CrossTaskTask]
    related: dict[str, CrossTaskTask]
    videos: list[CrossTaskVideo]
    val_videos: list[CrossTaskVideo]

    def annotation_path(self, task_id: str, video_id: str) -> Path:
        return self.root / "annotations" / f"{task_id}_{video_id}.csv"

    def annotation(self, task_id: str, video_id: str) -> list[StepSegment]:
        """The step segments of one video, validated against the task's number of steps."""
        task = self.primary.get(task_id) or self.related.get(task_id)
        n_steps = len(task.steps) if task else None
        return read_crosstask_annotation(self.annotation_path(task_id, video_id), n_steps)


def read_crosstask_tasks(path: str | Path) -> dict[str, CrossTaskTask]:
    """Read ``tasks_primary.txt``/``tasks_related.txt``: blocks of id, title, url, n_steps, steps, blank."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file", "CrossTask task blocks (id, title, url, n_steps, steps, blank)",
                              "no such file")
    lines = path.read_text().splitlines()
    tasks, i = {}, 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        block = lines[i:i + 5]
        if len(block) < 5:
            raise DataFormatError(path, f"line {i + 1}", "a block of 5 lines (id, title, url, n_steps, steps)",
                                  f"{len(block)} lines")
        task_id, title, url, n_steps, steps = (line.strip() for line in block)
        if not n_steps.isdigit():
            raise DataFormatError(path, f"line {i + 4} (n_steps of task {task_id})", "an integer", repr(n_steps))
        step_list = [s.strip() for s in steps.split(",")]
        if len(step_list) != int(n_steps) or not all(step_list):
            raise DataFormatError(path, f"line {i + 5} (steps of task {task_id})",
                                  f"{n_steps} comma-separated non-empty steps", f"{len(step_list)}: {steps[:80]!r}")
        if task_id in tasks:
            raise DataFormatError(path, f"line {i + 1}", "unique task ids", f"{task_id!r} repeated")
        tasks[task_id] = CrossTaskTask(task_id, title, url, step_list)
        i += 5
    return tasks


def read_crosstask_videos(path: str | Path) -> list[CrossTaskVideo]:
    """Read ``videos.csv``/``videos_val.csv``: lines ``task,vid,url`` without a header."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file", "lines task,vid,url", "no such file")
    videos, seen = [], {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split(",")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise DataFormatError(path, f"line {number}", "task,vid,url", repr(line[:80]))
        if (parts[0], parts[1]) in seen:
            raise DataFormatError(path, f"line {number}", "unique (task, vid) pairs",
                                  f"{parts[0]},{parts[1]} already on line {seen[parts[0], parts[1]]}")
        seen[parts[0], parts[1]] = number
        videos.append(CrossTaskVideo(*parts))
    return videos


def read_crosstask_annotation(path: str | Path, n_steps: int | None = None) -> list[StepSegment]:
    """Read ``annotations/<task>_<vid>.csv``: lines ``step (1-based),start_s,end_s``."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file", "lines step,start,end", "no such file")
    segments = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split(",")
        if len(parts) != 3:
            raise DataFormatError(path, f"line {number}", "step,start,end", repr(line[:80]))
        step = parts[0].strip()
        if not step.isdigit() or int(step) < 1 or (n_steps is not None and int(step) > n_steps):
            raise DataFormatError(path, f"line {number} step", f"a 1-based step index <= {n_steps}", repr(step))
        start = _number(path, number, "start", parts[1])
        end = _number(path, number, "end", parts[2])
        _check_segment(path, number, start, end)
        segments.append(StepSegment(int(step), start, end))
    return segments


def read_crosstask(root: str | Path) -> CrossTaskRelease:
    """Read a ``crosstask_release`` folder (or its parent). ``tasks_related.txt`` and ``videos_val.csv``
    are optional; annotations are read on demand with :meth:`CrossTaskRelease.annotation`."""
    root = Path(root)
    if (root / "crosstask_release").is_dir():
        root = root / "crosstask_release"
    primary = read_crosstask_tasks(root / "tasks_primary.txt")
    related_path = root / "tasks_related.txt"
    related = read_crosstask_tasks(related_path) if related_path.exists() else {}
    videos = read_crosstask_videos(root / "videos.csv")
    val_path = root / "videos_val.csv"
    val_videos = read_crosstask_videos(val_path) if val_path.exists() else []
    return CrossTaskRelease(root, primary, related, videos, val_videos)


def crosstask_split(release: CrossTaskRelease, features_dir: str | Path, n_train: int = 30,
                    seed: int = 0) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The reference's random train/test split (``CrossTaskMetaProcessor``, ``dsprocessor.py:378-457``).

    Keep the videos with both a feature file and an annotation, remove ``videos_val.csv`` videos,
    keep primary and related tasks; then (``np.random.seed(seed)``, tasks in ``videos.csv`` order) each
    *primary* task with more than ``n_train`` videos gives ``n_train`` random videos to train and the
    rest to test; every other task goes to train. Returns (train, test) as {task_id: [video ids]}.
    """
    features_dir = Path(features_dir)

    def available(videos: list[CrossTaskVideo]) -> dict[str, list[str]]:
        by_task: dict[str, list[str]] = {}
        for video in videos:
            if (features_dir / f"{video.video_id}.npy").exists() and \
                    release.annotation_path(video.task_id, video.video_id).exists():
                by_task.setdefault(video.task_id, []).append(video.video_id)
        return by_task

    task_vids = available(release.videos)
    val_vids = available(release.val_videos)
    task_vids = {task: [v for v in vids if task not in val_vids or v not in val_vids[task]]
                 for task, vids in task_vids.items()}
    all_tasks = set(release.primary) | set(release.related)
    task_vids = {task: vids for task, vids in task_vids.items() if task in all_tasks}
    rng = np.random.RandomState(seed)  # == np.random.seed(0) + np.random.choice in the reference
    train, test = {}, {}
    for task, vids in task_vids.items():
        if task in release.primary and len(vids) > n_train:
            train[task] = rng.choice(vids, n_train, replace=False).tolist()
            test[task] = [v for v in vids if v not in train[task]]
        else:
            train[task] = vids
    return train, test


# --------------------------------------------------------------------------------------------------
# COIN: COIN.json


@dataclass
class CoinSegment:
    label_id: int  # 1-based step label id; 0 is background in the per-second targets
    start: float
    end: float
    label: str


@dataclass
class CoinVideo:
    video_id: str
    subset: str  # "training" or "testing"
    segments: list[CoinSegment]
    duration: float | None = None


@dataclass
class CoinData:
    videos: dict[str, CoinVideo]
    labels: list[str]  # labels[id - 1]; gathered from the testing subset, as the reference does

    def testing(self) -> list[CoinVideo]:
        return [v for v in self.videos.values() if v.subset == "testing"]


def read_coin(path: str | Path) -> CoinData:
    """Read ``COIN.json``: ``{"database": {vid: {"subset", "annotation": [{"id", "segment", "label"}]}}}``.

    Label texts come from the testing subset as ``labels[id - 1]`` (``dsprocessor.py:676-737``); the
    ids 1..N must all occur there (the reference assumes it), else a DataFormatError names the gaps.
    """
    path = Path(path)
    data = _read_json(path)
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict):
        raise DataFormatError(path, "database", "an object {video_id: {...}}", repr(database)[:60])
    videos, labels = {}, {}
    for video_id, video in database.items():
        where = f"database[{video_id!r}]"
        if not isinstance(video, dict) or video.get("subset") not in ("training", "testing"):
            raise DataFormatError(path, f"{where}.subset", "'training' or 'testing'",
                                  repr(video.get("subset") if isinstance(video, dict) else video))
        if not isinstance(video.get("annotation"), list):
            raise DataFormatError(path, f"{where}.annotation", "a list of segments", repr(video.get("annotation")))
        segments = []
        for index, ann in enumerate(video["annotation"]):
            field_name = f"{where}.annotation[{index}]"
            if not isinstance(ann, dict):
                raise DataFormatError(path, field_name, "an object with id, segment, label", repr(ann)[:60])
            label_id = str(ann.get("id", ""))
            if not label_id.isdigit() or int(label_id) < 1:
                raise DataFormatError(path, f"{field_name}.id", "a label id >= 1 (as a string)", repr(ann.get("id")))
            segment = ann.get("segment")
            if not (isinstance(segment, list) and len(segment) == 2
                    and all(isinstance(x, (int, float)) for x in segment)):
                raise DataFormatError(path, f"{field_name}.segment", "[start, end] in seconds", repr(segment))
            _check_segment(path, field_name, float(segment[0]), float(segment[1]))
            label = ann.get("label")
            if not isinstance(label, str) or not label.strip():
                raise DataFormatError(path, f"{field_name}.label", "a non-empty string", repr(label))
            segments.append(CoinSegment(int(label_id), float(segment[0]), float(segment[1]), label))
            if video["subset"] == "testing":
                labels[int(label_id)] = label
        duration = video.get("duration")
        videos[video_id] = CoinVideo(video_id, video["subset"], segments,
                                     float(duration) if isinstance(duration, (int, float)) else None)
    gaps = sorted(set(range(1, max(labels, default=0) + 1)) - set(labels))
    if gaps:
        raise DataFormatError(path, "annotation ids of the testing subset", "every label id 1..N",
                              f"{len(gaps)} ids missing, e.g. {gaps[:5]}")
    return CoinData(videos, [labels[i] for i in range(1, len(labels) + 1)])


# --------------------------------------------------------------------------------------------------
# DiDeMo: test_data.json


@dataclass
class DidemoQuery:
    video: str  # the feature file name, verbatim
    description: str
    times: list[tuple[int, int]]  # one [start, end] 5-second chunk index pair per annotator, inclusive
    annotation_id: str | int | None = None


def read_didemo(path: str | Path) -> list[DidemoQuery]:
    """Read DiDeMo ``test_data.json``: a list of ``{"video", "description", "times": [[s, e], ...]}``."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, list):
        raise DataFormatError(path, "top level", "a list of records", type(data).__name__)
    queries = []
    for index, record in enumerate(data):
        where = f"[{index}]"
        if not isinstance(record, dict):
            raise DataFormatError(path, where, "an object with video, description, times", repr(record)[:60])
        for key in ("video", "description"):
            if not isinstance(record.get(key), str) or not record[key].strip():
                raise DataFormatError(path, f"{where}.{key}", "a non-empty string", repr(record.get(key)))
        times = record.get("times")
        if not isinstance(times, list) or not times:
            raise DataFormatError(path, f"{where}.times", "a non-empty list of [start, end] chunk indices",
                                  repr(times))
        for pair in times:
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, int) for x in pair)
                    and 0 <= pair[0] <= pair[1] <= 5):
                raise DataFormatError(path, f"{where}.times", "[s, e] with 0 <= s <= e <= 5 (5-second chunks)",
                                      repr(pair))
        queries.append(DidemoQuery(record["video"], record["description"].strip(),
                                   [tuple(pair) for pair in times], record.get("annotation_id")))
    return queries


# --------------------------------------------------------------------------------------------------
# helpers


def _read_json(path: Path):
    if not path.is_file():
        raise DataFormatError(path, "file", "a JSON file", "no such file")
    try:
        with open(path) as handle:
            return json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataFormatError(path, "content", "valid JSON", str(error)) from None


def _read_csv(path: str | Path, columns: tuple[str, ...], delimiter: str = ",") -> list[tuple[int, dict]]:
    """Rows of a CSV with a header, as (line number, row); every column in ``columns`` is required."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file", f"a CSV with columns {','.join(columns)}", "no such file")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        header = reader.fieldnames or []
        missing = [c for c in columns if c not in header]
        if missing:
            sep = "tab" if delimiter == "\t" else repr(delimiter)
            raise DataFormatError(path, "header", f"columns {', '.join(columns)} ({sep}-separated)",
                                  f"{header} (missing {', '.join(missing)})")
        rows = []
        for row in reader:
            line = reader.line_num
            if any(row.get(c) is None for c in columns):
                raise DataFormatError(path, f"line {line}", f"{len(header)} fields", "a short row")
            rows.append((line, row))
    return rows


def _number(path, line, name: str, value: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataFormatError(path, f"line {line} {name}", "a number of seconds", repr(value)) from None
    if not math.isfinite(number):
        raise DataFormatError(path, f"line {line} {name}", "a finite number of seconds", repr(value))
    return number


def _text(path, line, name: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataFormatError(path, f"line {line} {name}", "a non-empty string", repr(value))
    return value.strip()


def _check_segment(path, where, start: float, end: float) -> None:
    if start < 0 or end < start:
        raise DataFormatError(path, f"{where if isinstance(where, str) else f'line {where}'} start/end",
                              "0 <= start <= end", f"start={start}, end={end}")

