"""The sharded, memory-mapped feature store, and a folder-backed reader with the same interface.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4.1 pre-trains on the S3D features of 1.1M
HowTo100M videos; one ``np.load`` per video per step would make reading the bottleneck. Reference:
fairseq ``examples/MMPT/mmpt/utils/shardedtensor.py`` (``ShardedTensor``: ``<p>_data.npy`` = the
row-wise concatenation, ``<p>_starts.npy`` = int64 offsets of length n+1, both memory-mapped),
``scripts/video_feature_extractor/shard_feature.py`` (video shards of 4096 videos in list order,
``{split}_meta.pkl`` = {shard: [video ids]}) and ``scripts/text_token_extractor/pretokenization.py``
(caption ``startends`` float32 and ``caps_ids`` int32 rows of 32 padded with -1, same shards and
order): ``mmpt/utils/shardedtensor.py`` and ``scripts/text_token_extractor/pretokenization.py``.

Store layout (``python -m vclip.data build-store <pretrain folder> --out <dir>``)::

    <dir>/STORE.json                       format, splits, shard size, dedup seed, skipped videos
    <dir>/{split}_meta.json                {"0": [video ids], "1": [...]} (the reference's meta.pkl, as JSON)
    <dir>/{split}_{k}_data.npy             (sum T_i, 512) float16
    <dir>/{split}_{k}_starts.npy           (n + 1,) int64
    <dir>/raw_caption_dedup.bert-base-uncased.{split}_{k}.startends_{data,starts}.npy
    <dir>/raw_caption_dedup.bert-base-uncased.{split}_{k}.caps_ids_{data,starts}.npy

Both readers have the interface training uses: ``video_ids``, ``len()``, ``in``, ``split_ids(split)``,
``num_seconds(id)``, ``features(id)`` (T, 512) memory-mapped, ``clip(id, start, end)`` (a copy)
and ``captions(id)`` -> (starts, ends, token id lists). :func:`open_pretrain` picks the right one.
:class:`FeatureFolder` gives an evaluation folder's ``features/`` the same feature interface (``in``,
``num_seconds``, ``features``, ``clip``), reading each file once.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np

from vclip.data.dedup import dedup_captions
from vclip.data.formats import (
    FEATURE_DIM,
    VideoCaptions,
    clean_captions,
    load_features,
    read_feature_header,
    read_json,
    read_pretrain_folder,
)
from vclip.errors import DataFormatError
from vclip.progress import progress_bar

logger = logging.getLogger(__name__)

STORE_FILE = "STORE.json"
STORE_FORMAT = "vclip-feature-store/1"
TEXT_PREFIX = "raw_caption_dedup.bert-base-uncased."
CAPTION_TOKENS = 32  # token ids kept per caption in the text shards (pretokenization.py)
SPLITS = ("train", "val")


def _split_name(split: str) -> str:
    if split == "train":
        return "train"
    if split in ("val", "valid", "test"):
        return "val"
    raise ValueError(f"split: expected 'train' or 'val' ('valid'/'test' map to 'val'), got {split!r}")


class _PretrainReader:
    """What both readers share: ids per split, skip counts, and the clip helper."""

    video_ids: list[str]
    _split_ids: dict[str, list[str]]
    skipped: dict[str, list[str]]  # reason -> video ids left out

    def __len__(self) -> int:
        return len(self.video_ids)

    def __contains__(self, video_id: str) -> bool:
        return video_id in self._where

    def split_ids(self, split: str) -> list[str]:
        """Usable video ids of ``train`` or ``val`` in list order (``valid``/``test`` map to ``val``)."""
        return list(self._split_ids.get(_split_name(split), []))

    def clip(self, video_id: str, start: int, end: int, dtype=None) -> np.ndarray:
        """Seconds [start, end) of a video, copied (end is clamped to the video); stored dtype unless ``dtype``."""
        features = self.features(video_id)
        if not 0 <= start < len(features) or end <= start:
            raise ValueError(f"video {video_id!r}: clip [{start}, {end}) is outside [0, {len(features)})")
        return np.array(features[start:end], dtype=dtype)

    def _missing(self, video_id: str):
        reason = next((r for r, ids in self.skipped.items() if video_id in ids), None)
        detail = f" (skipped: {reason})" if reason else ""
        return KeyError(f"video {video_id!r} is not in this data{detail}")


# --------------------------------------------------------------------------------------------------
# Folder-backed reader


def prepare_captions(captions: VideoCaptions, num_seconds: int, dedup: bool = True, dedup_seed: int | None = 0
                     ) -> tuple[np.ndarray, np.ndarray, list[list[int]], Counter]:
    """Clean, de-duplicate and tokenise one video's captions as the store holds them.

    Returns (starts (N,) float32, ends (N,) float32, token id lists (each <= 32 ids), drop counts).
    A caption whose text gives no tokens is dropped and counted.
    """
    from vclip.tokenizer import tokenize_caption

    kept, counts = clean_captions(captions, num_seconds)
    if dedup:
        kept = dedup_captions(kept, dedup_seed)
    starts, ends, tokens = [], [], []
    for start, end, text in zip(kept.start, kept.end, kept.text):
        ids = tokenize_caption(text)[:CAPTION_TOKENS]
        if not ids:
            counts["no tokens"] += 1
            continue
        starts.append(start)
        ends.append(end)
        tokens.append(ids)
    return np.asarray(starts, np.float32), np.asarray(ends, np.float32), tokens, counts


class FolderStore(_PretrainReader):
    """Reads a pre-training folder directly: one memory-mapped ``.npy`` per video, captions in memory.

    At construction every listed video's feature header is validated (shape, dtype, truncation) and,
    with ``check_values``, its values (NaN/inf); captions are cleaned, de-duplicated with
    ``dedup_seed`` and tokenised. Unusable videos are left out and counted in ``skipped``
    ({reason: [ids]}) and ``caption_drops``; nothing fails later inside training. Suits small folders
    (the synthetic world); build a :class:`FeatureStore` for large ones.
    """

    def __init__(self, folder: str | Path, dedup: bool = True, dedup_seed: int | None = 0,
                 check_values: bool = True, progress: bool = False):
        self.folder = Path(folder)
        data = read_pretrain_folder(self.folder)
        self.skipped: dict[str, list[str]] = {}
        self.caption_drops: Counter = Counter()
        self._split_ids = {}
        self._where: dict[str, Path] = {}
        self._captions: dict[str, tuple[np.ndarray, np.ndarray, list[list[int]]]] = {}
        self._seconds: dict[str, int] = {}
        for split, ids in (("train", data.train_ids), ("val", data.val_ids)):
            usable = []
            for video_id in progress_bar(ids, desc=f"reading {split}", enabled=progress, leave=False):
                path = data.feature_path(video_id)
                try:
                    if check_values:
                        num_seconds = len(load_features(path))
                    else:
                        num_seconds = read_feature_header(path).num_seconds
                except DataFormatError as error:
                    reason = "missing features" if error.found == "no such file" else f"bad features ({error.field})"
                    self.skipped.setdefault(reason, []).append(video_id)
                    logger.warning("skipping %s", error)
                    continue
                starts, ends, tokens, drops = prepare_captions(data.captions[video_id], num_seconds, dedup, dedup_seed)
                self.caption_drops.update(drops)
                if not tokens:
                    self.skipped.setdefault("no usable captions", []).append(video_id)
                    continue
                self._where[video_id] = path
                self._seconds[video_id] = num_seconds
                self._captions[video_id] = (starts, ends, tokens)
                usable.append(video_id)
            self._split_ids[split] = usable
        self.video_ids = self._split_ids["train"] + self._split_ids["val"]
        if self.skipped:
            logger.warning("%s: left out %s", self.folder, {r: len(v) for r, v in self.skipped.items()})

    def num_seconds(self, video_id: str) -> int:
        if video_id not in self._seconds:
            raise self._missing(video_id)
        return self._seconds[video_id]

    def features(self, video_id: str) -> np.ndarray:
        """(T, 512) features of one video, memory-mapped in the stored dtype."""
        if video_id not in self._where:
            raise self._missing(video_id)
        return np.load(self._where[video_id], mmap_mode="r")

    def captions(self, video_id: str) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
        """(starts (N,) float32, ends (N,) float32, N token id lists of <= 32 ids)."""
        if video_id not in self._captions:
            raise self._missing(video_id)
        return self._captions[video_id]


# --------------------------------------------------------------------------------------------------
# Evaluation folders: features/<video_id>.npy without captions


class FeatureFolder:
    """The ``features/`` folder of an evaluation folder, with the feature interface of the training readers.

    ``video_id in folder``, ``num_seconds(id)``, ``features(id)`` (T, 512) in the stored dtype and
    ``clip(id, start, end)``, as :class:`FolderStore` and :class:`FeatureStore` have them. Each file is read
    (and validated: header, truncation, and with ``check_values`` NaN/inf) the first time it is asked for
    and kept in memory, so one evaluation reads every feature file once, whichever scorers (model, chance,
    oracle) use it. ``reads`` counts the files read from disk. An absent file is not an error (``in`` says
    False; the tasks count it as missing). A file that exists but is unusable (truncated, wrong width,
    NaN) is left out as training leaves it out: ``in`` says False, a warning names the file and
    ``broken`` keeps the reason (``python -m vclip.data check`` lists the same files as problems).
    """

    def __init__(self, features_dir: str | Path, check_values: bool = True):
        self.features_dir = Path(features_dir)
        self.check_values = check_values
        self.reads = 0
        self._arrays: dict[str, np.ndarray] = {}
        self._present: dict[str, bool] = {}
        self.broken: dict[str, str] = {}  # video id -> why its file is unusable

    def path(self, video_id: str) -> Path:
        return self.features_dir / f"{video_id}.npy"

    def __contains__(self, video_id: str) -> bool:
        if video_id not in self._present:
            present = video_id in self._arrays or self.path(video_id).is_file()
            if present and video_id not in self._arrays:
                try:
                    self._arrays[video_id] = load_features(self.path(video_id), check_finite=self.check_values)
                    self.reads += 1
                except DataFormatError as error:
                    logger.warning("left out (unusable feature file): %s", error)
                    self.broken[video_id] = str(error)
                    present = False
            self._present[video_id] = present
        return self._present[video_id]

    def features(self, video_id: str) -> np.ndarray:
        """(T, 512) features of one video in the stored dtype (read on first use, then kept)."""
        if video_id not in self:
            why = self.broken.get(video_id, "no feature file")
            raise KeyError(f"video {video_id!r}: {why} ({self.path(video_id)})")
        return self._arrays[video_id]

    def num_seconds(self, video_id: str) -> int:
        return len(self.features(video_id))

    def clip(self, video_id: str, start: int, end: int, dtype=None) -> np.ndarray:
        """Seconds [start, end) of a video, copied (end is clamped to the video); stored dtype unless ``dtype``."""
        features = self.features(video_id)
        if not 0 <= start < len(features) or end <= start:
            raise ValueError(f"video {video_id!r}: clip [{start}, {end}) is outside [0, {len(features)})")
        return np.array(features[start:end], dtype=dtype)


# --------------------------------------------------------------------------------------------------
# Sharded store


SHARD_KINDS = ("video", "startends", "caps_ids")  # the three ShardedTensors of each shard


def shard_prefix(folder: Path, split: str, shard: int, kind: str) -> Path:
    """``<folder>/<prefix>``; the tensor's files are ``<prefix>_data.npy`` and ``<prefix>_starts.npy``."""
    if kind == "video":
        return folder / f"{split}_{shard}"
    return folder / f"{TEXT_PREFIX}{split}_{shard}.{kind}"


def read_store_info(folder: Path) -> dict:
    """``STORE.json`` of a finished store (format, splits), or :class:`DataFormatError` saying what is wrong."""
    info_path = folder / STORE_FILE
    if not info_path.is_file():
        raise DataFormatError(info_path, "file", "a feature store written by `python -m vclip.data build-store`",
                              "no such file (an incomplete or missing store)")
    info = read_json(info_path)
    if not isinstance(info, dict) or info.get("format") != STORE_FORMAT:
        raise DataFormatError(info_path, "format", repr(STORE_FORMAT),
                              repr(info.get("format") if isinstance(info, dict) else info))
    if info.get("complete") is False:
        raise DataFormatError(info_path, "complete", "a finished build",
                              "an interrupted one (rebuild it: python -m vclip.data build-store ... --overwrite)")
    if info.get("splits") != list(SPLITS):
        raise DataFormatError(info_path, "splits", repr(list(SPLITS)), repr(info.get("splits")))
    return info


def read_store_meta(folder: Path, info: dict) -> dict[str, dict[int, list[str]]]:
    """{split: {shard: [video ids]}} from ``{split}_meta.json``: shards numbered 0..n-1, each id once in the store."""
    meta, where = {}, []
    for split in info["splits"]:
        path = folder / f"{split}_meta.json"
        document = read_json(path)
        if not isinstance(document, dict) or set(document) != {str(k) for k in range(len(document))}:
            raise DataFormatError(path, "shards", '{"0": [video ids], "1": [...], ...}',
                                  repr(list(document) if isinstance(document, dict) else document)[:80])
        shards = {}
        for shard in range(len(document)):
            ids = document[str(shard)]
            if not isinstance(ids, list) or not all(isinstance(v, str) for v in ids):
                raise DataFormatError(path, f"shard {shard}", "a list of video ids", repr(ids)[:80])
            shards[shard] = ids
            where += [(f"shard {shard} row {row}", video_id, path) for row, video_id in enumerate(ids)]
        meta[split] = shards
    first: dict[str, str] = {}
    for row, video_id, path in where:  # across shards and splits: one id, one place
        if video_id in first:
            raise DataFormatError(path, row, "each video id once in the store",
                                  f"{video_id!r} already at {first[video_id]}")
        first[video_id] = f"{path.name} {row}"
    return meta


def open_sharded_tensor(prefix: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Open one ShardedTensor of ``count`` items: (data memmap, (count + 1,) int64 offsets), validated.

    The offsets must start at 0, never decrease and end at the data's row count (item i is rows
    ``starts[i]:starts[i + 1]``); a negative, decreasing or past-the-end offset would hand training
    another video's rows or a short slice. Both ``python -m vclip.data check`` and every reader of the
    store open shards through here.
    """
    data_path, starts_path = Path(f"{prefix}_data.npy"), Path(f"{prefix}_starts.npy")
    try:
        data = np.load(data_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataFormatError(data_path, "shard", "a readable .npy", str(error).splitlines()[0] if str(error) else
                              type(error).__name__) from None
    try:
        starts = np.load(starts_path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataFormatError(starts_path, "offsets", "a readable .npy of int64 offsets",
                              str(error).splitlines()[0] if str(error) else type(error).__name__) from None
    if starts.shape != (count + 1,):
        raise DataFormatError(starts_path, "offsets", f"{count + 1} offsets (one more than the shard's {count} "
                              "videos in the meta file)", f"shape {starts.shape}")
    if starts.dtype.kind not in "iu":
        raise DataFormatError(starts_path, "offsets", "integers", str(starts.dtype))
    if data.ndim < 1:
        raise DataFormatError(data_path, "shape", "rows of items", str(data.shape))
    starts = starts.astype(np.int64)
    steps = np.diff(starts)
    checks = ((starts < 0, "non-negative offsets"), (np.r_[False, steps < 0], "non-decreasing offsets"),
              (starts > len(data), f"offsets within the {len(data)} rows of {data_path.name}"))
    for bad, expected in checks:
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataFormatError(starts_path, f"offsets[{row}]", expected, str(int(starts[row])))
    if starts[0] != 0 or starts[-1] != len(data):
        raise DataFormatError(starts_path, "offsets", f"0 first and {len(data)} (the rows of {data_path.name}) last",
                              f"{int(starts[0])} and {int(starts[-1])}")
    return data, starts


class FeatureStore(_PretrainReader):
    """A store written by :func:`build_store`; reads slices of memory-mapped shards, never whole ones."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.info = read_store_info(self.path)
        self.skipped = self.info.get("skipped", {})
        self._split_ids = {}
        self._where: dict[str, tuple[str, int, int]] = {}
        self._starts: dict[tuple[str, int, str], np.ndarray] = {}
        self._maps: dict[tuple[str, int, str], np.ndarray] = {}
        for split, shards in read_store_meta(self.path, self.info).items():
            ids = []
            for shard, shard_ids in shards.items():
                for kind in SHARD_KINDS:  # every offset table checked now, not when training reaches it
                    key = (split, shard, kind)
                    self._maps[key], self._starts[key] = open_sharded_tensor(self._file(split, shard, kind),
                                                                             len(shard_ids))
                video_rows = self._maps[split, shard, "video"]
                if video_rows.ndim != 2 or video_rows.shape[1] != FEATURE_DIM:
                    raise DataFormatError(f"{self._file(split, shard, 'video')}_data.npy", "shape",
                                          f"(seconds, {FEATURE_DIM})", str(video_rows.shape))
                for index, video_id in enumerate(shard_ids):
                    self._where[video_id] = (split, shard, index)
                ids.extend(shard_ids)
            self._split_ids[split] = ids
        self.video_ids = [v for split in self.info["splits"] for v in self._split_ids[split]]
        self._rows: dict[str, tuple[np.ndarray, int, int]] | None = None  # id -> (shard rows, first, count)

    def _file(self, split: str, shard: int, kind: str) -> Path:
        return shard_prefix(self.path, split, shard, kind)

    def _tensor(self, split: str, shard: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """(data memmap, starts array) of one ShardedTensor (opened and validated with the store)."""
        key = (split, shard, kind)
        return self._maps[key], self._starts[key]

    def _item(self, video_id: str, kind: str) -> np.ndarray:
        if video_id not in self._where:
            raise self._missing(video_id)
        split, shard, index = self._where[video_id]
        data, starts = self._tensor(split, shard, kind)
        return data[starts[index]:starts[index + 1]]

    def num_seconds(self, video_id: str) -> int:
        if video_id not in self._where:
            raise self._missing(video_id)
        split, shard, index = self._where[video_id]
        _, starts = self._tensor(split, shard, "video")
        return int(starts[index + 1] - starts[index])

    def features(self, video_id: str) -> np.ndarray:
        """(T, 512) float16 features of one video: a view into the memory-mapped shard (no copy)."""
        return self._item(video_id, "video")

    def clip(self, video_id: str, start: int, end: int, dtype=None) -> np.ndarray:
        """Seconds [start, end) of a video, copied out of the shard (end is clamped to the video).

        The hot path of training: one dict lookup and one slice of an open memory map. The copy keeps
        the stored float16 unless ``dtype`` is given (float16 -> float32 costs more than the read).
        """
        if self._rows is None:  # open every video shard once: plain ndarray views of the memory maps
            self._rows = {}
            for video_id_, (split, shard, index) in self._where.items():
                data, starts = self._tensor(split, shard, "video")
                self._rows[video_id_] = (np.asarray(data), int(starts[index]), int(starts[index + 1] - starts[index]))
        location = self._rows.get(video_id)
        if location is None:
            raise self._missing(video_id)
        rows, first, count = location
        if not 0 <= start < count or end <= start:
            raise ValueError(f"video {video_id!r}: clip [{start}, {end}) is outside [0, {count})")
        return np.array(rows[first + start:first + min(end, count)], dtype=dtype)

    def captions(self, video_id: str) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
        """(starts (N,) float32, ends (N,) float32, N token id lists with the -1 padding removed)."""
        startends = np.asarray(self._item(video_id, "startends"))
        caps = np.asarray(self._item(video_id, "caps_ids"))
        return startends[:, 0].copy(), startends[:, 1].copy(), [row[row >= 0].tolist() for row in caps]


# Every name a store writes (STORE.json aside): --overwrite removes a listed file only if it has one of these.
STORE_NAME = re.compile(r"(train|val)_(meta\.json|\d+_(data|starts)\.npy)|"
                        + re.escape(TEXT_PREFIX) + r"(train|val)_\d+\.(startends|caps_ids)_(data|starts)\.npy")


def _store_written_files(out: Path) -> list[Path]:
    """The files the store in ``out`` wrote: those its ``STORE.json`` lists (``files``, kept while a build
    runs) or, for a finished store, the shards its meta files name. Anything else in ``out`` is not the store's."""
    info_path = out / STORE_FILE
    info = read_json(info_path)
    if not isinstance(info, dict) or info.get("format") != STORE_FORMAT:
        raise DataFormatError(info_path, "format", f"{STORE_FORMAT!r} (a store this command wrote; nothing was removed)",
                              repr(info.get("format") if isinstance(info, dict) else info)[:60])
    names = info.get("files")
    if names is None:
        names = []
        for split, shards in read_store_meta(out, info).items():
            names.append(f"{split}_meta.json")
            names += [shard_prefix(Path(), split, shard, kind).name + suffix for shard in shards
                      for kind in SHARD_KINDS for suffix in ("_data.npy", "_starts.npy")]
    if not isinstance(names, list) or not all(isinstance(n, str) and STORE_NAME.fullmatch(n) for n in names):
        bad = names if not isinstance(names, list) else [n for n in names if not (isinstance(n, str)
                                                                                and STORE_NAME.fullmatch(n))]
        raise DataFormatError(info_path, "files", "the names of the store's own shard and meta files "
                              "(nothing was removed)", repr(bad)[:80])
    return [out / name for name in names]


def prepare_store_folder(source: Path, features_dir: Path, out: Path, overwrite: bool = False) -> None:
    """Make ``out`` ready for a new store, never removing what a store did not write.

    Refused: an ``out`` that is a file; one that is, lies inside or contains the pre-training folder
    or its feature folder (paths resolved, links included); an existing folder with entries but no
    ``STORE.json``, even with ``overwrite``. An existing store needs ``overwrite``, which removes its
    ``STORE.json`` and the files that lists, and nothing else (a link is removed, never its target).
    """
    if out.exists() and not out.is_dir():
        raise DataFormatError(out, "--out", "a folder for the store (new, empty, or a store to rebuild)", "a file")
    where = out.resolve()
    for name, other in (("pre-training folder", source), ("feature folder", features_dir)):
        other = other.resolve()
        if where == other or other in where.parents or where in other.parents:
            relation = "it" if where == other else "inside it" if other in where.parents else "a folder containing it"
            raise DataFormatError(out, "--out", f"a folder apart from the {name} {other} (a store never shares a "
                                  "folder with its source)", relation)
    if not out.exists():
        out.mkdir(parents=True)
        return
    info_path = out / STORE_FILE
    if info_path.exists() or info_path.is_symlink():
        if not overwrite:
            raise FileExistsError(f"{info_path} exists: pass --overwrite to rebuild it")
        for path in _store_written_files(out) + [info_path]:
            if path.is_dir() and not path.is_symlink():
                raise DataFormatError(path, "file", "a file the store wrote (nothing was removed)", "a folder")
        for path in _store_written_files(out) + [info_path]:
            path.unlink(missing_ok=True)
        return
    entries = sorted(entry.name for entry in out.iterdir())
    if entries:
        raise DataFormatError(out, "--out", "a new or empty folder, or a store to rebuild (one with STORE.json)",
                              f"{len(entries)} entries no store wrote, e.g. {entries[:3]} (nothing was removed; "
                              "choose another --out)")


class _StoreWriter:
    """Writes the files of a store into ``out``, each a new file listed in ``STORE.json`` before it exists.

    ``STORE.json`` is written first (``"complete": false``) and rewritten with each new file's name, so
    an interrupted build is an incomplete store whose files ``--overwrite`` can remove; the finished
    ``STORE.json`` drops the list (the meta files name every shard). A new file is
    created exclusively: an existing file or a symbolic link of that name (``out`` held something the
    store did not write) is refused, never overwritten or followed.
    """

    def __init__(self, out: Path, info: dict):
        self.out = out
        self.info = {**info, "complete": False, "files": []}
        self._write_info()

    def _write_info(self) -> None:
        temporary = self.out / f".{STORE_FILE}.partial"
        temporary.unlink(missing_ok=True)
        with open(temporary, "x") as handle:
            handle.write(json.dumps(self.info, indent=1))
        os.replace(temporary, self.out / STORE_FILE)  # replaces a link itself, never writes through it

    def new(self, name: str) -> Path:
        """Claim ``out/name`` (listed in STORE.json, created empty) and return its path."""
        path = self.out / name
        if path.exists() or path.is_symlink():
            what = f"a symbolic link to {os.readlink(path)}" if path.is_symlink() else "an existing file"
            raise DataFormatError(path, "file", "a new file of the store (build-store never writes over a file "
                                  "it did not write, nor through a link)", what)
        self.info["files"].append(name)
        self._write_info()
        open(path, "xb").close()
        return path

    def save(self, name: str, array: np.ndarray) -> None:
        with open(self.new(name), "r+b") as handle:
            np.save(handle, array)

    def finish(self, info: dict) -> dict:
        """The finished ``STORE.json``: ``info`` alone (its meta files name every shard it wrote)."""
        self.info = info
        self._write_info()
        return info


def build_store(folder: str | Path, out: str | Path, shard_size: int = 4096, dedup: bool = True,
                dedup_seed: int | None = 0, progress: bool = True, overwrite: bool = False) -> dict:
    """Build a :class:`FeatureStore` from a pre-training folder; returns the contents of ``STORE.json``.

    Every listed video is validated (header, values); captions are cleaned, de-duplicated and
    tokenised (96 characters, then 32 tokens). Unusable videos are left out and listed under
    ``skipped`` by reason. Shards hold ``shard_size`` videos in list order. ``out`` must be new, empty
    or a store to rebuild with ``overwrite`` (see :func:`prepare_store_folder`: nothing the store did
    not write is removed or written over). While it runs, ``STORE.json`` says ``"complete": false`` and
    lists every file as it is created; the finished ``STORE.json`` is written last.
    """
    folder, out = Path(folder), Path(out)
    if shard_size < 1:
        raise ValueError(f"shard_size (--shard-size): expected a number of videos per shard >= 1, got {shard_size}")
    data = read_pretrain_folder(folder)
    prepare_store_folder(folder, data.features_dir, out, overwrite)
    writer = _StoreWriter(out, {"format": STORE_FORMAT, "source": str(folder), "splits": list(SPLITS)})
    skipped: dict[str, list[str]] = {}
    drops: Counter = Counter()
    totals = {}
    bar = progress_bar(total=len(data.train_ids) + len(data.val_ids), desc="build-store", enabled=progress,
               unit="video")
    for split, ids in (("train", data.train_ids), ("val", data.val_ids)):
        # pass 1: validate every video and prepare its captions (headers give the shard sizes)
        usable: list[tuple[str, int, tuple]] = []
        for video_id in ids:
            try:
                num_seconds = read_feature_header(data.feature_path(video_id)).num_seconds
            except DataFormatError as error:
                reason = "missing features" if error.found == "no such file" else f"bad features ({error.field})"
                skipped.setdefault(reason, []).append(video_id)
                logger.warning("skipping %s", error)
                bar.update()
                continue
            starts, ends, tokens, counts = prepare_captions(data.captions[video_id], num_seconds, dedup, dedup_seed)
            drops.update(counts)
            if not tokens:
                skipped.setdefault("no usable captions", []).append(video_id)
                bar.update()
                continue
            usable.append((video_id, num_seconds, (starts, ends, tokens)))
        # pass 2: write the shards, video by video, through memory maps
        meta, seconds, captions = {}, 0, 0
        for shard, first in enumerate(range(0, len(usable), shard_size)):
            chunk = usable[first:first + shard_size]
            kept = []
            offsets = np.zeros(len(chunk) + 1, dtype=np.int64)
            np.cumsum([n for _, n, _ in chunk], out=offsets[1:])
            video_path = writer.new(f"{split}_{shard}_data.npy")
            video_data = np.lib.format.open_memmap(video_path, mode="w+", dtype=np.float16,
                                                   shape=(int(offsets[-1]), FEATURE_DIM))
            written = 0
            for video_id, num_seconds, prepared in chunk:
                try:
                    video_data[written:written + num_seconds] = load_features(data.feature_path(video_id))
                except DataFormatError as error:
                    skipped.setdefault(f"bad features ({error.field})", []).append(video_id)
                    logger.warning("skipping %s", error)
                    bar.update()
                    continue
                kept.append((video_id, num_seconds, prepared))
                written += num_seconds
                bar.update()
            video_data.flush()
            del video_data
            if written < offsets[-1]:  # a video failed its value check: rewrite the shard without the gap
                full = np.load(video_path, mmap_mode="r")[:written].copy()
                np.save(video_path, full)
            offsets = np.zeros(len(kept) + 1, dtype=np.int64)
            np.cumsum([n for _, n, _ in kept], out=offsets[1:])
            writer.save(f"{split}_{shard}_starts.npy", offsets)
            caption_counts = [len(c[2]) for _, _, c in kept]
            text_offsets = np.zeros(len(kept) + 1, dtype=np.int64)
            np.cumsum(caption_counts, out=text_offsets[1:])
            startends = np.zeros((int(text_offsets[-1]), 2), dtype=np.float32)
            caps_ids = np.full((int(text_offsets[-1]), CAPTION_TOKENS), -1, dtype=np.int32)
            for (_, _, (starts, ends, tokens)), row in zip(kept, text_offsets[:-1]):
                startends[row:row + len(starts), 0] = starts
                startends[row:row + len(starts), 1] = ends
                for i, ids in enumerate(tokens):
                    caps_ids[row + i, :len(ids)] = ids
            prefix = f"{TEXT_PREFIX}{split}_{shard}"
            writer.save(f"{prefix}.startends_data.npy", startends)
            writer.save(f"{prefix}.startends_starts.npy", text_offsets)
            writer.save(f"{prefix}.caps_ids_data.npy", caps_ids)
            writer.save(f"{prefix}.caps_ids_starts.npy", text_offsets)
            meta[str(shard)] = [video_id for video_id, _, _ in kept]
            seconds += int(offsets[-1])
            captions += int(text_offsets[-1])
        writer.new(f"{split}_meta.json").write_text(json.dumps(meta))
        totals[split] = {"videos": sum(len(v) for v in meta.values()), "shards": len(meta), "seconds": seconds,
                         "captions": captions}
    bar.close()
    info = {"format": STORE_FORMAT, "source": str(folder), "splits": list(SPLITS), "shard_size": shard_size,
            "feature_dim": FEATURE_DIM, "dtype": "float16", "dedup": dedup, "dedup_seed": dedup_seed,
            "caption_tokens": CAPTION_TOKENS, "tokenizer": "bert-base-uncased (96 characters, no special tokens)",
            "totals": totals, "caption_drops": dict(drops), "skipped": skipped}
    return writer.finish(info)


def open_pretrain(path: str | Path, **folder_options) -> tuple[FeatureStore | FolderStore, list[str], list[str]]:
    """Open pre-training data: a store (``STORE.json``) or a plain pre-training folder (``raw_caption.json``).

    Returns (reader, train ids, val ids), ids restricted to the usable videos. A synthetic world's
    root is accepted too (its ``pretrain/`` is used). ``folder_options`` go to :class:`FolderStore`.
    """
    path = Path(path)
    if (path / STORE_FILE).is_file():
        store = FeatureStore(path)
    elif (path / "raw_caption.json").is_file():
        store = FolderStore(path, **folder_options)
    elif (path / "pretrain" / "raw_caption.json").is_file():
        store = FolderStore(path / "pretrain", **folder_options)
    else:
        raise DataFormatError(path, "layout", f"a feature store ({STORE_FILE}) or a pre-training folder "
                              "(raw_caption.json, train.lst, features/)", "neither")
    return store, store.split_ids("train"), store.split_ids("val")

