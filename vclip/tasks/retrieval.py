"""Zero-shot text-to-video retrieval on YouCook2 (validation clips) and MSR-VTT (JSFusion 1k-A), plus
video-to-text: the two retrieval tasks, their annotation readers and their data checks.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (text->video retrieval; the retrieval table).
Reference: fairseq ``examples/MMPT``, ``projects/retri/videoclip/test_youcook_zs.yaml`` and
``test_vtt_zs.yaml``; ``mmpt/processors/dsprocessor.py`` (``YoucookMetaProcessor`` drops clips whose
video has no features; ``YoucookVideoProcessor`` slices ``feat[start:end]``; ``DSAligner`` keeps the
first 32 seconds; ``MSRVTTMetaProcessor`` reads ``video_id, sentence``); ``mmpt/evaluators/predictor.py``
``RetrievalPredictor`` (scores = text @ video.T) and ``metric.py`` ``RetrievalMetric``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vclip.data.check import check_videos, check_whole_video_items, count_segments_inside, note_special_tokens
from vclip.data.formats import (
    check_segment,
    parse_number,
    parse_text,
    read_csv_rows,
    read_json,
    refuse_duplicates,
)
from vclip.data.store import FeatureFolder
from vclip.errors import DataFormatError
from vclip.metrics import retrieval_metrics
from vclip.tasks.common import (
    FEATURES_DIR,
    TaskResult,
    encode_clips_once,
    encode_texts_once,
    eval_mode,
    mean_of_dicts,
    require_file,
)
from vclip.tasks.registry import TEMPCLR_3, PaperNumber, Task, register_task
from vclip.tasks.training import (
    PairFinetuning,
    PairSplit,
    overlap_note,
    report_lost_segments,
    validation_videos,
)
from vclip.tokenizer import MAX_VIDEO_LEN

YOUCOOK_CSV = "validation_youcook.csv"
YOUCOOK_JSON = "youcookii_annotations_trainval.json"
MSRVTT_CSV = "MSRVTT_JSFUSION_test.csv"


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
    """Read the YouCook2 validation CSV (columns ``end,start,task,text,video_id``), one clip per row.

    A row repeated verbatim (same video, start, end and text) is refused, naming both lines.
    """
    rows = read_csv_rows(path, YOUCOOK_COLUMNS)
    refuse_duplicates(path, ((f"line {line}", tuple(row[c].strip() for c in YOUCOOK_COLUMNS)) for line, row in rows),
                      "rows (the same clip and text listed twice)")
    clips, per_video = [], Counter()
    for line, row in rows:
        start = parse_number(path, line, "start", row["start"])
        end = parse_number(path, line, "end", row["end"])
        check_segment(path, line, start, end)
        text = parse_text(path, line, "text", row["text"])
        video_id = parse_text(path, line, "video_id", row["video_id"])
        clips.append(YoucookClip(video_id, start, end, text, row["task"].strip(), per_video[video_id]))
        per_video[video_id] += 1
    return clips


def read_youcook_json(path: str | Path, subset: str = "validation") -> list[YoucookClip]:
    """Read ``youcookii_annotations_trainval.json`` (``{"database": {vid: {"subset", "recipe_type",
    "annotations": [{"id", "segment": [s, e], "sentence"}]}}}``), keeping one ``subset``.

    A video id twice in ``database``, or one of its annotations repeated (same segment and sentence), is refused.
    """
    path = Path(path)
    data = read_json(path)
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
            check_segment(path, field_name, float(segment[0]), float(segment[1]))
            sentence = ann.get("sentence")
            if not isinstance(sentence, str) or not sentence.strip():
                raise DataFormatError(path, f"{field_name}.sentence", "a non-empty string", repr(sentence))
            clips.append(YoucookClip(video_id, float(segment[0]), float(segment[1]), sentence.strip(),
                                     str(video.get("recipe_type", "")), index))
    refuse_duplicates(path, ((f"database[{c.video_id!r}].annotations[{c.clip_index}]",
                              (c.video_id, c.start, c.end, c.text)) for c in clips),
                      "annotations (the same segment and sentence listed twice)")
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
    """Read the JSFusion 1k-A test CSV (columns ``key,vid_key,video_id,sentence``).

    1k-A pairs each video with one sentence: a ``key`` or ``video_id`` twice is refused, naming both lines.
    """
    rows = read_csv_rows(path, MSRVTT_COLUMNS)
    clips = [MsrvttClip(row["key"].strip(), row["vid_key"].strip(), parse_text(path, line, "video_id", row["video_id"]),
                        parse_text(path, line, "sentence", row["sentence"])) for line, row in rows]
    for column in ("key", "video_id"):
        refuse_duplicates(path, ((f"line {line} {column}", getattr(clip, column)) for (line, _), clip in zip(rows, clips)),
                          f"{column}s (1k-A: one sentence per video)")
    return clips


@dataclass
class RetrievalSet:
    """The evaluable pairs of one retrieval folder: pair i is (texts[i], clip keys[i])."""

    task: str
    folder: Path
    n_items: int
    rows: list[int]  # annotation-file row of each evaluated pair
    texts: list[str]
    keys: list[tuple[str, int, int]]  # (video_id, first second, end second) of each clip
    clips: dict  # key -> (T, 512) rows of the clip (all of them; the first 32 are used)
    missing: list[str]  # video ids without a feature file (one per skipped item)
    notes: list[str]

    def result(self, scorer: str) -> TaskResult:
        return TaskResult.start(self.task, scorer, self.folder, self.n_items, len(self.rows), self.missing, self.notes)


def slice_clips(task: str, folder: Path, records, features) -> RetrievalSet:
    """Pair each annotation record ``(video_id, start, end, text)`` with its clip of ``features``.

    The clip is ``features[floor(start):ceil(end)]`` of its video, or the whole video when ``start`` is
    None (MSR-VTT). Items whose feature file is absent are skipped and counted.
    """
    rows, texts, keys, clips, missing, empty = [], [], [], {}, [], 0
    for row, (video_id, start, end, text) in enumerate(records):
        if video_id not in features:
            missing.append(video_id)
            continue
        video = features.features(video_id)
        if start is None:
            first, last = 0, len(video)
        else:
            first, last = int(math.floor(start)), int(math.ceil(end))
        key = (video_id, first, last)
        clips[key] = video[first:last]
        empty += len(clips[key]) == 0
        rows.append(row)
        texts.append(text)
        keys.append(key)
    notes = []
    if empty:
        notes.append(f"{empty} clips lie outside their video's features (start >= length); evaluated as "
                     "empty videos, as the reference does")
    shared = {key: count for key, count in Counter(keys).items() if count > 1}
    if shared:  # e.g. two steps of one real YouCook2 segment: identical clips, a tie for each text
        notes.append(f"{sum(shared.values())} rows share their clip (same video and seconds) with another row, e.g. "
                     f"{next(iter(shared))}; the clips are identical, so each such text's own clip ties with its "
                     "twin and, ties counting against the model, ranks at best second")
    long_clips = sum(len(clips[k]) > MAX_VIDEO_LEN for k in set(keys))
    if long_clips:
        notes.append(f"{long_clips} clips are longer than {MAX_VIDEO_LEN} s; only their first {MAX_VIDEO_LEN} s are used")
    return RetrievalSet(task, folder, len(records), rows, texts, keys, clips, missing, notes)


def _with_metrics(result: TaskResult, draws: list[np.ndarray]) -> TaskResult:
    """text->video metrics as the headline, video->text in details (means over the draws)."""
    result.metrics = mean_of_dicts([retrieval_metrics(d) for d in draws])
    result.details["video_to_text"] = mean_of_dicts([retrieval_metrics(d.T) for d in draws])
    return result


class RetrievalTask(Task):
    """What YouCook2 and MSR-VTT share: clips against sentences, scores = text @ video.T, R@K both ways."""

    metrics = ("R@1", "R@5", "R@10", "MedR")

    def records(self, folder: Path) -> list[tuple[str, float | None, float | None, str]]:
        """(video_id, start, end, text) per annotation row; start/end None for a whole video."""
        raise NotImplementedError

    def load(self, folder, config, features) -> RetrievalSet:
        return slice_clips(self.name, Path(folder), self.records(Path(folder)), features)

    def n_evaluable(self, data: RetrievalSet) -> int:
        return len(data.rows)

    def score(self, model, data: RetrievalSet, config) -> TaskResult:
        """text->video R@1/5/10, MedR, MeanR, N (the paper's setting); ``details["video_to_text"]`` the same
        for video->text."""
        with eval_mode(model):
            text = encode_texts_once(model, data.texts, config, desc=f"{self.name} texts")  # (N, H)
            video = encode_clips_once(model, data.keys, data.clips, config, desc=f"{self.name} clips")  # (N, H)
        return _with_metrics(data.result("model"), [(text @ video.T).double().numpy()])

    def chance(self, data: RetrievalSet, config) -> TaskResult:
        """A random scorer (standard normal scores), averaged over ``baseline_repeats`` draws."""
        rng = np.random.default_rng(config.baseline_seed)
        n = len(data.rows)
        return _with_metrics(data.result("chance"), [rng.standard_normal((n, n)) for _ in range(config.baseline_repeats)])

    def oracle(self, data: RetrievalSet, truth, config) -> TaskResult:
        """Text i scores clip j by the fraction of the clip's evaluated seconds (its first 32) that show text
        i's latent step, and, where the truth records the task each text names (``text_tasks``), only when
        the clip's video shows that task; exact ties are broken at random (mean of draws)."""
        if len(truth.text_steps) != data.n_items:
            raise DataFormatError(Path(data.folder) / "synthetic_truth.json", "text_steps",
                                  f"one per annotation row ({data.n_items})", str(len(truth.text_steps)))
        text_steps = np.asarray([truth.text_steps[r] for r in data.rows])  # (N,)
        scores = np.zeros((len(data.rows), len(data.keys)))
        for j, (video_id, first, last) in enumerate(data.keys):
            shown = truth.seconds(video_id)[first:last][:MAX_VIDEO_LEN]
            if len(shown):
                scores[:, j] = (shown[None, :] == text_steps[:, None]).mean(axis=1)
        if getattr(truth, "text_tasks", None):
            text_tasks = np.asarray([truth.text_tasks[r] for r in data.rows])
            clip_tasks = np.asarray([truth.video_tasks[video_id] for video_id, _, _ in data.keys])
            scores *= text_tasks[:, None] == clip_tasks[None, :]
        rng = np.random.default_rng(config.baseline_seed)
        return _with_metrics(data.result("oracle"),
                             [scores + 1e-6 * rng.random(scores.shape) for _ in range(config.baseline_repeats)])


# The paper table the numbers are printed in (values read from paperswithcode.com).
RETRIEVAL_TABLE = "section 4, text-video retrieval table"


@register_task
class YouCook2(RetrievalTask):
    """YouCook2 validation clips (3,350 with all features): a step's sentence against every clip."""

    name = "youcook2"
    title = "YouCook2 text-video retrieval"
    markers = (YOUCOOK_CSV, YOUCOOK_JSON)
    protocol = ("clip = `features[start:end]`, first 32 s; text->video over all N clips (paper), plus "
                "video->text")
    paper = (
        PaperNumber("youcook2", "zero-shot", "R@1", 22.7, RETRIEVAL_TABLE),
        PaperNumber("youcook2", "zero-shot", "R@5", 50.4, RETRIEVAL_TABLE),
        PaperNumber("youcook2", "zero-shot", "R@10", 63.1, RETRIEVAL_TABLE),
        PaperNumber("youcook2", "fine-tuned", "R@1", 32.2, RETRIEVAL_TABLE),
        PaperNumber("youcook2", "fine-tuned", "R@5", 62.6, RETRIEVAL_TABLE),
        PaperNumber("youcook2", "fine-tuned", "R@10", 75.0, RETRIEVAL_TABLE),
    )

    def records(self, folder: Path):
        """``validation_youcook.csv``, or without it the validation subset of
        ``youcookii_annotations_trainval.json``."""
        if (folder / YOUCOOK_CSV).is_file():
            return [(c.video_id, c.start, c.end, c.text) for c in read_youcook_csv(folder / YOUCOOK_CSV)]
        path = require_file(folder / YOUCOOK_JSON, f"{YOUCOOK_CSV} or {YOUCOOK_JSON} (YouCook2 annotations)")
        return [(c.video_id, c.start, c.end, c.text) for c in read_youcook_json(path)]

    def check(self, report, path: Path, features_dir: Path, check_values: bool) -> None:
        file = path if path.is_file() else next((path / m for m in self.markers if (path / m).exists()),
                                                path / YOUCOOK_CSV)
        clips = read_youcook_json(file) if file.suffix == ".json" else read_youcook_csv(file)
        note_special_tokens(report, ((f"{c.video_id} {c.start:g}-{c.end:g} s", c.text) for c in clips), "texts")
        report.counts["clips"] = len(clips)
        seconds = check_videos(report, features_dir, [c.video_id for c in clips], check_values)
        report.usable_items = count_segments_inside(report, [(c.video_id, c.start) for c in clips], seconds, "clips")
        report.counts["clips with features"] = report.usable_items

    def recognises(self, path, columns, document) -> bool:
        if columns is not None and {"end", "start", "text", "video_id"} <= columns:
            return True
        database = document.get("database") if isinstance(document, dict) else None
        if isinstance(database, dict) and "annotations" in next(iter(database.values()), {}):
            return True
        return super().recognises(path, columns, document)


# A third-party rerun of the released checkpoint (not the paper): YouCook2 zero-shot.
RELEASED_CHECKPOINT_RERUN = tuple(
    PaperNumber("youcook2", "zero-shot (released checkpoint rerun)", metric, value, "not in the paper", TEMPCLR_3)
    for metric, value in (("R@1", 22.37), ("R@5", 50.30), ("R@10", 62.56), ("MedR", 5.0))
)


@register_task
class MSRVTT(RetrievalTask):
    """MSR-VTT JSFusion 1k-A test: 1,000 videos with one sentence each; the clip is the whole video."""

    name = "msrvtt"
    title = "MSR-VTT (1k-A) text-video retrieval"
    markers = (MSRVTT_CSV,)
    protocol = "1k-A, first 32 s of each video; text->video and video->text"
    paper = (
        PaperNumber("msrvtt", "zero-shot", "R@1", 10.4, RETRIEVAL_TABLE),
        PaperNumber("msrvtt", "zero-shot", "R@5", 22.2, RETRIEVAL_TABLE),
        PaperNumber("msrvtt", "zero-shot", "R@10", 30.0, RETRIEVAL_TABLE),
        PaperNumber("msrvtt", "fine-tuned", "R@1", 30.9, RETRIEVAL_TABLE),
        PaperNumber("msrvtt", "fine-tuned", "R@5", 55.4, RETRIEVAL_TABLE),
        PaperNumber("msrvtt", "fine-tuned", "R@10", 66.8, RETRIEVAL_TABLE),
    )

    def records(self, folder: Path):
        path = require_file(folder / MSRVTT_CSV, "the JSFusion 1k-A test CSV (key,vid_key,video_id,sentence)")
        return [(c.video_id, None, None, c.sentence) for c in read_msrvtt_csv(path)]

    def check(self, report, path: Path, features_dir: Path, check_values: bool) -> None:
        file = path if path.is_file() else path / MSRVTT_CSV
        clips = read_msrvtt_csv(file)
        note_special_tokens(report, ((c.video_id, c.sentence) for c in clips), "sentences")
        check_whole_video_items(report, features_dir, clips, "clips", check_values)

    def recognises(self, path, columns, document) -> bool:
        return (columns is not None and {"video_id", "sentence"} <= columns) or super().recognises(path, columns, document)


# --------------------------------------------------------------------------------------------------
# Fine-tuning (vclip.tasks.training): the training splits of YouCook2 and MSR-VTT, and their hooks

MSRVTT_TRAIN = "MSRVTT_train.csv"  # the official 7k training list (column video_id)
MSRVTT_FULL_TEST = "MSRVTT_FULL_test.csv"  # the official 3k test list; its videos outside 1k-A join training
MSRVTT_TRAIN_9K = "MSRVTT_train.9k.csv"  # a prebuilt 9k list (the synthetic worlds write one)
MSRVTT_TRAIN_LISTS = (MSRVTT_TRAIN, MSRVTT_FULL_TEST, MSRVTT_TRAIN_9K)
MSRVTT_DATA = "MSRVTT_data.json"


def _video_id_list(path: Path) -> list[str]:
    """The ``video_id`` column of a CSV, in file order; a video listed twice is an error naming it."""
    rows = read_csv_rows(path, ("video_id",))
    listed = [parse_text(path, line, "video_id", row["video_id"]) for line, row in rows]
    refuse_duplicates(path, zip((f"line {line} video_id" for line, _ in rows), listed), "video ids")
    return listed


def msrvtt_training_list(folder: str | Path) -> tuple[list[str], str, Path]:
    """(video ids in list order, one line saying which files gave them, the list file errors name) of
    MSR-VTT's training videos.

    The reference's "9k" (``MSRVTTMetaProcessor``, ``mmpt/processors/dsprocessor.py``): the videos of
    ``MSRVTT_train.csv`` followed by those of ``MSRVTT_FULL_test.csv`` that are not in the JSFusion
    1k-A test (``MSRVTT_JSFUSION_test.csv``). Without those two files a prebuilt
    ``MSRVTT_train.9k.csv`` is read, else ``MSRVTT_train.csv`` alone (the 7k list); the line says which,
    never silently. None of them is a :class:`DataFormatError` naming the files.
    """
    folder = Path(folder)
    train, full, prebuilt = (folder / name for name in MSRVTT_TRAIN_LISTS)
    if train.is_file() and full.is_file():
        test = {clip.video_id for clip in read_msrvtt_csv(require_file(folder / MSRVTT_CSV,
                                                                       "the JSFusion 1k-A test CSV"))}
        listed = _video_id_list(train)
        known = set(listed)
        extra = [v for v in _video_id_list(full) if v not in test and v not in known]
        return listed + extra, train, (f"training list: {MSRVTT_TRAIN} ({len(listed)} videos) + {len(extra)} videos of "
                                f"{MSRVTT_FULL_TEST} outside the 1k-A test = {len(listed) + len(extra)} videos "
                                "(the reference's 9k)")
    if prebuilt.is_file():
        listed = _video_id_list(prebuilt)
        return listed, prebuilt, (f"training list: {MSRVTT_TRAIN_9K}, {len(listed)} videos (a prebuilt list; "
                        f"{MSRVTT_TRAIN} + {MSRVTT_FULL_TEST}, the reference's construction, are not both here)")
    if train.is_file():
        listed = _video_id_list(train)
        return listed, train, (f"training list: {MSRVTT_TRAIN} alone, {len(listed)} videos ({MSRVTT_FULL_TEST} is absent, "
                        "so this is not the reference's 9k, which adds its videos outside the 1k-A test)")
    raise DataFormatError(train, "file", f"the MSR-VTT training list ({MSRVTT_TRAIN} + {MSRVTT_FULL_TEST}, or "
                          f"{MSRVTT_TRAIN_9K}; column video_id) beside {MSRVTT_DATA}", "no such file")


def read_msrvtt_train(list_path: str | Path, data_path: str | Path,
                      video_ids: list[str] | None = None) -> dict[str, list[str]]:
    """MSR-VTT training captions: ``{video_id: [caption, ...]}`` for the videos of the training list.

    ``list_path`` is a CSV with a ``video_id`` column (``MSRVTT_train.csv``, ``MSRVTT_train.9k.csv``),
    or ``video_ids`` gives the list (then ``list_path`` only names it in errors); ``data_path`` is the
    official ``MSRVTT_data.json``, whose ``sentences`` are ``{"video_id", "caption"}`` records
    (``sen_id`` and the ``videos`` list are not needed). A listed video without a caption, a video
    listed twice and a ``sen_id`` twice are errors naming them.
    """
    listed = video_ids if video_ids is not None else _video_id_list(Path(list_path))
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


def _refuse_test_split(task: str, split: str) -> None:
    if split not in ("train", "val"):
        raise ValueError(f"{task}: fine-tuning reads a train or val split (its test split is the evaluation's), "
                         f"got {split!r}")


def youcook_training_split(folder: Path, split: str, val_fraction: float, seed: int) -> PairSplit:
    """YouCook2's training clips (``youcookii_annotations_trainval.json``, subset "training"; the
    reference's ``youcook_train.pkl``), a clip being ``features[floor(start):ceil(end)]``."""
    _refuse_test_split("youcook2", split)
    path = require_file(folder / YOUCOOK_JSON, f"{YOUCOOK_JSON} with a 'training' subset (YouCook2 annotations)")
    records = read_youcook_json(path, subset="training")
    if not records:
        raise DataFormatError(path, "database[*].subset", "videos of subset 'training' (the fine-tuning data)",
                              "none")
    if (folder / YOUCOOK_CSV).is_file():
        evaluated = {clip.video_id for clip in read_youcook_csv(folder / YOUCOOK_CSV)}
    else:
        evaluated = {clip.video_id for clip in read_youcook_json(path)}
    held_out = validation_videos([r.video_id for r in records], val_fraction, seed)
    data = PairSplit("youcook2", split, [], [], {}, n_items=0,
                     source=f"training list: {YOUCOOK_JSON} subset 'training', "
                            f"{len({r.video_id for r in records})} videos ({len(records)} clips)")
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
    report_lost_segments(data, path, outside, labelled, "clips")
    data.notes += overlap_note(sorted(set(left_out)), "youcook2")
    return data


def msrvtt_training_split(task: str, folder: Path, split: str, val_fraction: float, seed: int,
                          evaluated: set[str]) -> PairSplit:
    """MSR-VTT's training videos (:func:`msrvtt_training_list`) with all their captions
    (``MSRVTT_data.json``); a clip is the whole video. ``evaluated``: the task's test videos (left out)."""
    _refuse_test_split(task, split)
    listed, list_path, source = msrvtt_training_list(folder)
    captions = read_msrvtt_train(list_path, require_file(folder / MSRVTT_DATA, "MSRVTT_data.json (MSR-VTT sentences)"),
                                 listed)
    held_out = validation_videos(list(captions), val_fraction, seed)
    data = PairSplit(task, split, [], [], {}, source=source)
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
    data.notes += overlap_note(left_out, task)
    return data


def _msrvtt_retrieval_split(folder: Path, split: str, val_fraction: float, seed: int) -> PairSplit:
    test = {clip.video_id for clip in read_msrvtt_csv(require_file(folder / MSRVTT_CSV, "the JSFusion test CSV"))}
    return msrvtt_training_split("msrvtt", folder, split, val_fraction, seed, test)


# The reference's recipes: projects/retri/videoclip/{youcook,vtt}_videoclip.yaml (T2VContraLoss)
class YouCookFinetuning(PairFinetuning):
    """YouCook2's training clips (``youcookii_annotations_trainval.json``, subset ``training``)."""

    training_files = (YOUCOOK_JSON,)

    def no_training_note(self, folder: Path) -> str | None:
        if not read_youcook_json(Path(folder) / YOUCOOK_JSON, "training"):
            return f"no training clips (no 'training' subset in {YOUCOOK_JSON}): vclip.finetune cannot run here"
        return None


YouCook2.finetuning = YouCookFinetuning("youcook2", youcook_training_split, "text_to_video")
MSRVTT.finetuning = PairFinetuning("msrvtt", _msrvtt_retrieval_split, "text_to_video",
                                   training_files=("MSRVTT_train.9k.csv", "MSRVTT_train.csv"))
