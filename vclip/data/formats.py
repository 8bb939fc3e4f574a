"""Readers and validation for every dataset layout the kit reads.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (pre-training on HowTo100M; zero-shot evaluation
on YouCook2, MSR-VTT, MSR-VTT QA, CrossTask, COIN, DiDeMo). Reference: fairseq ``examples/MMPT``,
``mmpt/processors/dsprocessor.py`` (the meta processors of every end task), ``how2processor.py``
(``raw_caption.json``, feature ``.npy`` files) and ``scripts/video_feature_extractor/extract.py``
(features: one L2-normalised 512-d S3D vector per second, float16). The layouts are described in
``data/README.md``; the reference reads them in ``mmpt/processors/dsprocessor.py`` and ``how2processor.py``.

Every reader takes a file path and returns simple dataclasses. Structural problems (a missing column,
a malformed row, a JSON value of the wrong type, a duplicated id) raise :class:`DataFormatError`,
whose message names the file, the field and what was expected. Item-level problems that the
reference tolerates (a caption with empty text, a caption after the end of the video) are dropped by
:func:`clean_captions` and *counted*, never silently skipped.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vclip.errors import DataFormatError

FEATURE_DIM = 512  # S3D ``video_embedding`` width (``extract.py``); 1024 would be mixed_5c, the wrong layer
FEATURE_DTYPES = (np.dtype(np.float16), np.dtype(np.float32))




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
# Pre-training folder (HowTo100M style): features/, raw_caption.json, train.lst and val.lst
# (or the reference's how2_s3d_train.lst and how2_s3d_val.lst)


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
    data = read_json(path)
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
    lines = read_text(path, "a list of video ids, one per line").splitlines()
    numbered = [(number, line.strip()) for number, line in enumerate(lines, start=1) if line.strip()]
    refuse_duplicates(path, ((f"line {number}", video_id) for number, video_id in numbered), "video ids")
    return [video_id for _, video_id in numbered]


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


# The split lists under the kit's names and under the reference's (data/how2/how2_s3d_{train,val}.lst).
SPLIT_LISTS = {"train": ("train.lst", "how2_s3d_train.lst"), "val": ("val.lst", "how2_s3d_val.lst")}


def split_list_path(root: str | Path, split: str) -> Path:
    """The ``split`` list of a pre-training folder: ``train.lst`` or the reference's ``how2_s3d_train.lst``.

    Returns the kit's name when neither exists; refuses a folder holding both names.
    """
    root = Path(root)
    found = [root / name for name in SPLIT_LISTS[split] if (root / name).is_file()]
    if len(found) > 1:
        raise DataFormatError(root, f"{split} list", f"one of {' or '.join(SPLIT_LISTS[split])}", "both")
    return found[0] if found else root / SPLIT_LISTS[split][0]


def read_pretrain_folder(root: str | Path) -> PretrainFolder:
    """Read ``raw_caption.json`` and the train and val lists of a pre-training folder (not the features)."""
    root = Path(root)
    if not split_list_path(root, "train").is_file():
        raise DataFormatError(root, "train list", " or ".join(SPLIT_LISTS["train"]), "neither")
    train_ids = read_id_list(split_list_path(root, "train"))
    val_path = split_list_path(root, "val")
    val_ids = read_id_list(val_path) if val_path.exists() else []
    both = sorted(set(train_ids) & set(val_ids))
    if both:
        raise DataFormatError(val_path, "video ids", "no id in both the train and val lists",
                              f"{len(both)} shared, e.g. {both[:3]}")
    captions = read_raw_caption(root / "raw_caption.json")
    missing = [v for v in train_ids + val_ids if v not in captions]
    if missing:
        raise DataFormatError(root / "raw_caption.json", "video ids", "an entry for every listed video",
                              f"{len(missing)} listed ids without captions, e.g. {missing[:3]}")
    return PretrainFolder(root, train_ids, val_ids, captions)


# --------------------------------------------------------------------------------------------------
# helpers


def read_text(path: str | Path, expected: str) -> str:
    """The text of an annotation or list file, decoded as UTF-8 (a leading byte-order mark is accepted).

    A file that is not UTF-8 raises :class:`DataFormatError` naming the line and the byte, not a traceback.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file", expected, "no such file")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise DataFormatError(path, f"line {line}", "UTF-8 text",
                              f"byte 0x{raw[error.start]:02x} at byte {error.start} (another encoding? "
                              "save the file as UTF-8)") from None


def refuse_duplicates(path: str | Path, rows, what: str) -> None:
    """Raise :class:`DataFormatError` when two of ``rows`` = ``(where, key)`` share a key.

    The message names the first repeat (``where`` is its line, row or field), the row it repeats and how
    many repeats the file holds: an annotation listed twice changes every count and, under the
    metrics' tie rule, ranks each copy below its twin (a file with every row twice scores R@1 = 0).
    """
    first: dict = {}
    repeats = []
    for where, key in rows:
        if key in first:
            repeats.append((where, key))
        else:
            first[key] = where
    if repeats:
        where, key = repeats[0]
        shown = key if isinstance(key, str) else ", ".join(str(part) for part in key)
        more = f" ({len(repeats)} repeated rows in all)" if len(repeats) > 1 else ""
        raise DataFormatError(path, where, f"unique {what}", f"{shown!r} already on {first[key]}{more}")


def read_json(path: Path):
    """A JSON document; invalid UTF-8 or JSON, and an object with a key twice (json keeps the last
    silently), raise :class:`DataFormatError`."""
    text = read_text(path, "a JSON file")
    repeated: list[str] = []

    def unique_keys(pairs):
        document = dict(pairs)
        if len(document) < len(pairs):
            repeated.extend(key for key, count in Counter(key for key, _ in pairs).items() if count > 1)
        return document

    try:
        document = json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as error:
        raise DataFormatError(path, "content", "valid JSON", str(error)) from None
    if repeated:
        more = f" ({len(repeated)} repeated keys in all)" if len(repeated) > 1 else ""
        raise DataFormatError(path, f"key {repeated[0]!r}", "each key once in its object (JSON keeps only the last)",
                              f"it twice{more}")
    return document


def read_csv_rows(path: str | Path, columns: tuple[str, ...], delimiter: str = ",") -> list[tuple[int, dict]]:
    """Rows of a CSV with a header, as (line number, row); every column in ``columns`` is required."""
    path = Path(path)
    text = read_text(path, f"a CSV with columns {','.join(columns)}")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
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
    except csv.Error as error:  # a field over csv's limit, a NUL byte, an unclosed quote...
        limit = csv.field_size_limit()
        raise DataFormatError(path, f"line {reader.reader.line_num}", f"CSV fields of at most {limit} characters"
                              if "field limit" in str(error) else "valid CSV", str(error)) from None
    return rows


def parse_number(path, line, name: str, value: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataFormatError(path, f"line {line} {name}", "a number of seconds", repr(value)) from None
    if not math.isfinite(number):
        raise DataFormatError(path, f"line {line} {name}", "a finite number of seconds", repr(value))
    return number


def parse_text(path, line, name: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataFormatError(path, f"line {line} {name}", "a non-empty string", repr(value))
    return value.strip()


def check_segment(path, where, start: float, end: float) -> None:
    finite = math.isfinite(start) and math.isfinite(end)  # json reads NaN and Infinity as numbers
    if not finite or start < 0 or end < start:
        raise DataFormatError(path, f"{where if isinstance(where, str) else f'line {where}'} start/end",
                              "0 <= start <= end" if finite else "finite seconds", f"start={start}, end={end}")

