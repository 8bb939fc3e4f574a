"""Zero-shot text-to-video retrieval on YouCook2 (validation clips) and MSR-VTT (JSFusion 1k-A), plus
video-to-text.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4.1 / Table 1-2 (text->video retrieval, zero-shot).
Reference: fairseq ``examples/MMPT``, ``projects/retri/videoclip/test_youcook_zs.yaml`` and
``test_vtt_zs.yaml``; ``mmpt/processors/dsprocessor.py`` (``YoucookMetaProcessor`` drops clips whose
video has no features; ``YoucookVideoProcessor`` slices ``feat[start:end]``; ``DSAligner`` keeps the
first 32 seconds; ``MSRVTTMetaProcessor`` reads ``video_id, sentence``); ``mmpt/evaluators/predictor.py``
``RetrievalPredictor`` (scores = text @ video.T) and ``metric.py`` ``RetrievalMetric``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vclip.data import read_msrvtt_csv, read_youcook_csv, read_youcook_json
from vclip.metrics import retrieval_metrics
from vclip.tasks.common import (
    EvalConfig,
    FeatureCache,
    TaskResult,
    encode_clips_once,
    encode_texts_once,
    eval_mode,
    mean_of_dicts,
    require_file,
)
from vclip.tokenizer import MAX_VIDEO_LEN

YOUCOOK_CSV = "validation_youcook.csv"
YOUCOOK_JSON = "youcookii_annotations_trainval.json"
MSRVTT_CSV = "MSRVTT_JSFUSION_test.csv"


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


def load_retrieval(task: str, folder: str | Path) -> RetrievalSet:
    """Read the annotation file of a ``youcook2`` or ``msrvtt`` folder and slice each clip's features.

    YouCook2: ``validation_youcook.csv`` (or, without it, the validation subset of
    ``youcookii_annotations_trainval.json``); the clip is ``features[floor(start):ceil(end)]`` of its
    video. MSR-VTT: ``MSRVTT_JSFUSION_test.csv``; the clip is the whole feature file. Items whose
    feature file is absent are skipped and counted.
    """
    folder = Path(folder)
    cache = FeatureCache(folder)
    notes: list[str] = []
    if task == "youcook2":
        if (folder / YOUCOOK_CSV).is_file():
            records = [(c.video_id, c.start, c.end, c.text) for c in read_youcook_csv(folder / YOUCOOK_CSV)]
        else:
            path = require_file(folder / YOUCOOK_JSON, f"{YOUCOOK_CSV} or {YOUCOOK_JSON} (YouCook2 annotations)")
            records = [(c.video_id, c.start, c.end, c.text) for c in read_youcook_json(path)]
    elif task == "msrvtt":
        path = require_file(folder / MSRVTT_CSV, "the JSFusion 1k-A test CSV (key,vid_key,video_id,sentence)")
        records = [(c.video_id, None, None, c.sentence) for c in read_msrvtt_csv(path)]
    else:
        raise ValueError(f"retrieval task must be 'youcook2' or 'msrvtt', got {task!r}")

    rows, texts, keys, clips, missing, empty = [], [], [], {}, [], 0
    for row, (video_id, start, end, text) in enumerate(records):
        if not cache.has(video_id):
            missing.append(video_id)
            continue
        features = cache.get(video_id)
        if start is None:
            first, last = 0, len(features)
        else:
            first, last = int(math.floor(start)), int(math.ceil(end))
        key = (video_id, first, last)
        clips[key] = features[first:last]
        empty += len(clips[key]) == 0
        rows.append(row)
        texts.append(text)
        keys.append(key)
    if empty:
        notes.append(f"{empty} clips lie outside their video's features (start >= length); evaluated as "
                     "empty videos, as the reference does")
    long_clips = sum(len(clips[k]) > MAX_VIDEO_LEN for k in set(keys))
    if long_clips:
        notes.append(f"{long_clips} clips are longer than {MAX_VIDEO_LEN} s; only their first {MAX_VIDEO_LEN} s are used")
    return RetrievalSet(task, folder, len(records), rows, texts, keys, clips, missing, notes)


def _result(data: RetrievalSet, scorer: str) -> TaskResult:
    return TaskResult.start(data.task, scorer, data.folder, data.n_items, len(data.rows), data.missing, data.notes)


def _fill(result: TaskResult, sim: np.ndarray) -> TaskResult:
    """text->video metrics as the headline, video->text in details."""
    result.metrics = retrieval_metrics(sim)
    result.details["video_to_text"] = retrieval_metrics(sim.T)
    return result


def evaluate_retrieval(model, task: str, folder: str | Path, config: EvalConfig | None = None) -> TaskResult:
    """Zero-shot retrieval of ``model`` on a ``youcook2`` or ``msrvtt`` folder.

    Returns a TaskResult whose metrics are text->video R@1/5/10, MedR, MeanR, N (the paper's setting)
    and whose ``details["video_to_text"]`` holds the same for video->text.
    """
    config = config or EvalConfig()
    data = load_retrieval(task, folder)
    result = _result(data, "model")
    if not data.rows:
        return result
    with eval_mode(model):
        text = encode_texts_once(model, data.texts, config, desc=f"{task} texts")  # (N, H)
        video = encode_clips_once(model, data.keys, data.clips, config, desc=f"{task} clips")  # (N, H)
    return _fill(result, (text @ video.T).double().numpy())


def retrieval_chance(task: str, folder: str | Path, config: EvalConfig | None = None) -> TaskResult:
    """Chance: a random scorer (standard normal scores), averaged over ``baseline_repeats`` draws."""
    config = config or EvalConfig()
    data = load_retrieval(task, folder)
    result = _result(data, "chance")
    if not data.rows:
        return result
    rng = np.random.default_rng(config.baseline_seed)
    n = len(data.rows)
    draws = [rng.standard_normal((n, n)) for _ in range(config.baseline_repeats)]
    result.metrics = mean_of_dicts([retrieval_metrics(d) for d in draws])
    result.details["video_to_text"] = mean_of_dicts([retrieval_metrics(d.T) for d in draws])
    return result


def retrieval_oracle(task: str, folder: str | Path, truth, config: EvalConfig | None = None) -> TaskResult:
    """Oracle on a synthetic folder: text i scores clip j by the fraction of the clip's evaluated seconds
    (its first 32) that show text i's latent step, and, where the truth records the task each text names
    (``text_tasks``), only when the clip's video shows that task; exact ties are broken at random."""
    config = config or EvalConfig()
    data = load_retrieval(task, folder)
    result = _result(data, "oracle")
    if not data.rows:
        return result
    if len(truth.text_steps) != data.n_items:
        raise ValueError(f"{data.folder}: synthetic_truth.json has {len(truth.text_steps)} text steps for "
                         f"{data.n_items} annotation rows")
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
    draws = [scores + 1e-6 * rng.random(scores.shape) for _ in range(config.baseline_repeats)]
    result.metrics = mean_of_dicts([retrieval_metrics(d) for d in draws])
    result.details["video_to_text"] = mean_of_dicts([retrieval_metrics(d.T) for d in draws])
    return result
