"""Zero-shot CrossTask action-step localisation: find one second for each step of a task, in order.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (action step localisation, CrossTask). Reference:
fairseq ``examples/MMPT``, ``projects/retri/videoclip/test_crosstask_zs_videoclip.yaml``;
``mmpt/processors/dsprocessor.py`` (``CrossTaskMetaProcessor``: the seeded 30-per-primary-task
train/test split, :func:`vclip.data.crosstask_split`; ``CrossTaskAligner``: windows of 32 seconds
every 16, targets ``Y[floor(start):ceil(end), step - 1] = 1``); ``mmpt/models/mmfusion.py``
``MMFusionSeparateActionLocalization`` (per-second video states with [CLS] masked out, dot products
with the pooled step texts); ``mmpt/evaluators/predictor.py`` ``CrossTaskPredictor`` (window scores
averaged, log-softmax over steps, DmZhukov/CrossTask ``dp``: :func:`vclip.localization.step_localization`);
``metric.py`` ``CrossTaskMetric`` (:func:`vclip.metrics.crosstask_recall`). Zero-shot evaluation
uses the test part of the split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vclip.data import crosstask_split, read_crosstask
from vclip.localization import step_localization
from vclip.metrics import crosstask_recall
from vclip.tasks.common import (
    EvalConfig,
    FeatureCache,
    TaskResult,
    encode_texts_once,
    eval_mode,
    mean_of_dicts,
    window_scores,
)

RELEASE = "crosstask_release"


@dataclass
class CrossTaskSet:
    folder: Path
    n_items: int  # videos of the primary tasks listed in videos.csv (outside videos_val.csv)
    videos: list[tuple[str, str]]  # (task, video) of the test split, in split order
    steps: dict  # task -> [step text]
    targets: dict  # (task, video) -> (T, K) uint8
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    n_train: int = 0


def read_assignment(segments, num_seconds: int, num_steps: int) -> np.ndarray:
    """(T, K) uint8 targets: ``Y[floor(start):ceil(end), step - 1] = 1`` (the reference's ``_read_assignment``)."""
    targets = np.zeros((num_seconds, num_steps), dtype=np.uint8)
    for segment in segments:
        targets[int(math.floor(segment.start)):int(math.ceil(segment.end)), segment.step - 1] = 1
    return targets


def load_crosstask(folder: str | Path, config: EvalConfig | None = None) -> CrossTaskSet:
    """The test split of a ``crosstask`` folder (``crosstask_release/`` + ``features/``) and its targets.

    Videos of primary tasks without a feature file are counted as missing; videos without an
    annotation file are counted in a note (the reference drops both before splitting).
    """
    config = config or EvalConfig()
    folder = Path(folder)
    release = read_crosstask(folder / RELEASE if (folder / RELEASE).is_dir() else folder)
    cache = FeatureCache(folder)
    val = {(v.task_id, v.video_id) for v in release.val_videos}
    listed = [v for v in release.videos if v.task_id in release.primary and (v.task_id, v.video_id) not in val]
    missing = [v.video_id for v in listed if not cache.has(v.video_id)]
    unannotated = [v.video_id for v in listed
                   if cache.has(v.video_id) and not release.annotation_path(v.task_id, v.video_id).is_file()]
    train, test = crosstask_split(release, cache.features_dir, n_train=config.crosstask_n_train,
                                  seed=config.crosstask_seed)
    data = CrossTaskSet(folder, len(listed), [], {}, {}, missing, [],
                        sum(len(v) for t, v in train.items() if t in release.primary))
    if unannotated:
        data.notes.append(f"{len(unannotated)} primary-task videos have no annotation file and are left out "
                          f"(as the reference), e.g. {unannotated[:3]}")
    small = sorted(t for t in release.primary if t not in test)
    if small:
        data.notes.append(f"primary tasks {small} have <= {config.crosstask_n_train} usable videos: all go to "
                          "training (as the reference), none to the test set")
    for task, videos in test.items():
        data.steps[task] = list(release.primary[task].steps)
        for video in videos:
            num_seconds = len(cache.get(video))
            data.targets[task, video] = read_assignment(release.annotation(task, video), num_seconds,
                                                        len(data.steps[task]))
            data.videos.append((task, video))
    return data


def _result(data: CrossTaskSet, scorer: str) -> TaskResult:
    result = TaskResult.start("crosstask", scorer, data.folder, data.n_items, len(data.videos), data.missing,
                              data.notes)
    result.details["train_videos"] = data.n_train
    result.details["test_tasks"] = len(data.steps)
    return result


def _recall(data: CrossTaskSet, predictions: dict) -> dict:
    y_true: dict = {}
    y_pred: dict = {}
    for task, video in data.videos:
        y_true.setdefault(task, {})[video] = data.targets[task, video]
        y_pred.setdefault(task, {})[video] = predictions[task, video]
    metrics = crosstask_recall(y_true, y_pred)
    return metrics


def _localize(scores: np.ndarray, key, too_short: list) -> np.ndarray:
    """The DP's labels, or all zeros (every step missed) for a video shorter than its number of steps."""
    if scores.shape[0] < scores.shape[1]:
        too_short.append(key[1])
        return np.zeros(scores.shape, dtype=np.float32)
    return step_localization(scores)


def _finish(data: CrossTaskSet, predictions: dict, result: TaskResult, too_short: list) -> TaskResult:
    metrics = _recall(data, predictions)
    result.details["per_task_recall"] = metrics.pop("per_task")
    result.metrics = metrics
    if too_short:
        result.notes.append(f"{len(too_short)} videos are shorter (in seconds) than their number of steps: no "
                            f"ordered one-second-per-step placement exists, counted as all steps missed")
    return result


def evaluate_crosstask(model, folder: str | Path, config: EvalConfig | None = None) -> TaskResult:
    """Zero-shot CrossTask recall (percent, mean over the primary tasks of the test split)."""
    config = config or EvalConfig()
    data = load_crosstask(folder, config)
    result = _result(data, "model")
    if not data.videos:
        return result
    cache = FeatureCache(data.folder)
    predictions, too_short = {}, []
    with eval_mode(model):
        texts = {task: encode_texts_once(model, steps, config, desc=f"crosstask steps {task}")
                 for task, steps in data.steps.items()}
        stream = ((key, cache.get(key[1]), texts[key[0]]) for key in data.videos)
        for key, scores in window_scores(model, stream, config, total=len(data.videos), desc="crosstask videos"):
            predictions[key] = _localize(scores, key, too_short)
    return _finish(data, predictions, result, too_short)


def crosstask_chance(folder: str | Path, config: EvalConfig | None = None) -> TaskResult:
    """Chance: random per-second step scores through the same log-softmax and DP, mean over draws."""
    config = config or EvalConfig()
    data = load_crosstask(folder, config)
    result = _result(data, "chance")
    if not data.videos:
        return result
    rng = np.random.default_rng(config.baseline_seed)
    draws = []
    for _ in range(config.baseline_repeats):
        too_short: list = []
        predictions = {key: _localize(rng.standard_normal(data.targets[key].shape), key, too_short)
                       for key in data.videos}
        draws.append(_recall(data, predictions))
    result.metrics = mean_of_dicts(draws)
    return result


def crosstask_oracle(folder: str | Path, truth, config: EvalConfig | None = None) -> TaskResult:
    """Oracle: second t scores 1 for step k when its latent step is step k's, else 0 (ties random)."""
    config = config or EvalConfig()
    data = load_crosstask(folder, config)
    result = _result(data, "oracle")
    if not data.videos:
        return result
    rng = np.random.default_rng(config.baseline_seed)
    exact = {}
    for task, video in data.videos:
        step_ids = np.asarray(truth.task_steps[task])
        exact[task, video] = (truth.seconds(video)[:, None] == step_ids[None, :]).astype(np.float64)
    draws = []
    for _ in range(config.baseline_repeats):
        too_short: list = []
        predictions = {key: _localize(s + 1e-6 * rng.random(s.shape), key, too_short) for key, s in exact.items()}
        draws.append(_recall(data, predictions))
    result.metrics = mean_of_dicts(draws)
    return result
