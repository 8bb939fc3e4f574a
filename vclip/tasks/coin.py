"""Zero-shot COIN action segmentation: a step label (or background) for every second.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (action segmentation, COIN; zero-shot 58.9).
Reference: fairseq ``examples/MMPT``, ``projects/retri/videoclip/test_coin_zs.yaml``;
``mmpt/processors/dsprocessor.py`` (``COINActionSegmentationMetaProcessor``: label texts from the
testing subset, ``text_labels[id - 1]``, testing videos with features; ``COINActionSegmentationAligner``:
windows of 32 every 16 seconds, ``video_targets[floor(s):ceil(e)] = id``, 0 elsewhere);
``mmpt/evaluators/predictor.py`` ``COINZSPredictor``: label embeddings = pooled raw label texts,
threshold lambda = the largest off-diagonal label-label similarity, per-window states (``[CLS]``
masked out) @ labels, averaged over windows, prediction = argmax + 1 if the max score > lambda else 0;
``metric.py`` ``COINActionSegmentationMetric`` (frame accuracy, background included). With the
released checkpoint every prediction is background (fairseq issue 4940), so the all-background
baseline is reported beside the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vclip.data.check import check_videos
from vclip.data.formats import check_segment, read_json
from vclip.data.store import FeatureFolder
from vclip.errors import DataFormatError
from vclip.metrics import coin_frame_accuracy
from vclip.tasks.common import (
    FEATURES_DIR,
    TaskResult,
    encode_texts_once,
    eval_mode,
    require_file,
    window_scores,
)
from vclip.tasks.registry import FAIRSEQ_4940, PaperNumber, Task, register_task
from vclip.tasks.training import (
    IGNORE_INDEX,
    VideoSplit,
    WindowFinetuning,
    report_lost_segments,
    validation_videos,
)

if TYPE_CHECKING:  # torch is imported in the functions that score: `vclip.data check` runs without it
    import torch

COIN_JSON = "COIN.json"


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
    data = read_json(path)
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
            check_segment(path, field_name, float(segment[0]), float(segment[1]))
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


@dataclass
class CoinSet:
    folder: Path
    n_items: int  # testing videos in COIN.json
    video_ids: list[str]
    labels: list[str]  # labels[id - 1]
    targets: dict  # video -> (T,) int64
    features: object = None  # the FeatureFolder the videos were read from (window scoring reads it again, from memory)
    missing: list[str] = field(default_factory=list)

    def result(self, scorer: str) -> TaskResult:
        result = TaskResult.start("coin", scorer, self.folder, self.n_items, len(self.video_ids), self.missing)
        result.details["labels"] = len(self.labels)
        return result

    def metrics(self, predictions: dict) -> dict:
        return coin_frame_accuracy([predictions[v] for v in self.video_ids], [self.targets[v] for v in self.video_ids])


def video_targets(segments, num_seconds: int) -> np.ndarray:
    """(T,) int64 per-second labels: 0 (background) or the segment's label id over [floor(s), ceil(e))."""
    targets = np.zeros(num_seconds, dtype=np.int64)
    for segment in segments:
        targets[max(0, int(math.floor(segment.start))):min(num_seconds, int(math.ceil(segment.end)))] = segment.label_id
    return targets


def label_threshold(label_embeddings: torch.Tensor) -> float:
    """lambda: the largest off-diagonal entry of ``labels @ labels.T`` (the reference's ``lbd``)."""
    import torch

    similarity = label_embeddings @ label_embeddings.T
    n = similarity.shape[0]
    if n < 2:
        raise ValueError(f"the COIN threshold needs at least 2 labels, got {n}")
    return float(similarity.masked_select(~torch.eye(n, dtype=torch.bool)).max())


def predict_labels(scores: np.ndarray, threshold: float) -> np.ndarray:
    """(T,) labels from (T, L) window-averaged scores: argmax + 1 where the max exceeds ``threshold``, else 0."""
    best = scores.argmax(axis=1) + 1
    return np.where(scores.max(axis=1) > threshold, best, 0)


def predict_videos(model, data: CoinSet, config) -> tuple[dict, float]:
    """The zero-shot rule on every testing video: ({video id: (T,) label ids, 0 = background}, lambda)."""
    predictions = {}
    with eval_mode(model):
        labels = encode_texts_once(model, data.labels, config, desc="coin labels")  # (L, H)
        threshold = label_threshold(labels)
        stream = ((v, data.features.features(v), labels) for v in data.video_ids)
        for video, scores in window_scores(model, stream, config, total=len(data.video_ids), desc="coin videos"):
            predictions[video] = predict_labels(scores, threshold)
    return predictions, threshold


@register_task
class COIN(Task):
    """COIN action segmentation: a step label (or background) for every second of the testing videos."""

    name = "coin"
    title = "COIN action segmentation"
    markers = (COIN_JSON,)
    metrics = ("frame_acc", "frame_acc_no_bg", "all_background")
    protocol = ("raw label texts; lambda = largest off-diagonal label-label similarity; per second `argmax + 1` "
                "if the max > lambda else background; windows 32 / 16 averaged, [CLS] masked; frame accuracy "
                "with background, without background, and the all-background baseline")
    paper = (
        PaperNumber("coin", "zero-shot", "frame_acc", 58.9, "section 4, action segmentation table",
                    FAIRSEQ_4940 + " (every prediction was background)"),
        PaperNumber("coin", "fine-tuned", "frame_acc", 68.7, "section 4, action segmentation table"),
    )

    def load(self, folder, config, features) -> CoinSet:
        """The testing videos of ``COIN.json`` with their per-second targets (absent features counted)."""
        folder = Path(folder)
        coin = read_coin(require_file(folder / COIN_JSON, "COIN.json ({'database': {video: {subset, annotation}}})"))
        testing = coin.testing()
        data = CoinSet(folder, len(testing), [], coin.labels, {}, features)
        for video in testing:
            if video.video_id not in features:
                data.missing.append(video.video_id)
                continue
            data.video_ids.append(video.video_id)
            data.targets[video.video_id] = video_targets(video.segments, features.num_seconds(video.video_id))
        return data

    def n_evaluable(self, data: CoinSet) -> int:
        return len(data.video_ids)

    def score(self, model, data: CoinSet, config) -> TaskResult:
        """Zero-shot frame accuracy (percent) with background, without, and the all-background baseline."""
        result = data.result("model")
        predictions, threshold = predict_videos(model, data, config)
        result.metrics = data.metrics(predictions)
        result.details["threshold"] = threshold
        if result.metrics["predicted_background"] == 100.0:
            result.notes.append("every second was predicted background (as the released checkpoint does, fairseq "
                                "issue 4940): frame_acc equals the all-background baseline")
        return result

    def chance(self, data: CoinSet, config) -> TaskResult:
        """The all-background baseline (what the reference's zero-shot number turns out to be)."""
        result = data.result("chance")
        result.metrics = data.metrics({v: np.zeros_like(t) for v, t in data.targets.items()})
        result.notes.append("chance = predicting background for every second")
        return result

    def oracle(self, data: CoinSet, truth, config) -> TaskResult:
        """Each second gets the label of its latent step (background where it shows none or a step without
        a label)."""
        result = data.result("oracle")
        label_of_step: dict[int, int] = {}
        for index, step in enumerate(truth.label_steps):
            if step >= 0:
                label_of_step.setdefault(int(step), index + 1)
        predictions = {v: np.array([label_of_step.get(int(s), 0) for s in truth.seconds(v)], dtype=np.int64)
                       for v in data.video_ids}
        result.metrics = data.metrics(predictions)
        return result

    def check(self, report, path: Path, features_dir: Path, check_values: bool) -> None:
        coin = read_coin(path if path.is_file() else path / COIN_JSON)
        testing = coin.testing()
        report.counts["testing videos"] = len(testing)
        report.counts["labels"] = len(coin.labels)
        seconds = check_videos(report, features_dir, [v.video_id for v in testing], check_values)
        report.usable_items = len(seconds)
        if seconds:
            labelled = sum(min(math.ceil(s.end), seconds[v.video_id]) - min(math.floor(s.start), seconds[v.video_id])
                           for v in testing if v.video_id in seconds for s in v.segments)
            report.counts["background fraction (testing)"] = round(1 - labelled / max(1, sum(seconds.values())), 3)

    def recognises(self, path, columns, document) -> bool:
        database = document.get("database") if isinstance(document, dict) else None
        if isinstance(database, dict) and "annotations" not in next(iter(database.values()), {}):
            return True
        return super().recognises(path, columns, document)


# --------------------------------------------------------------------------------------------------
# Fine-tuning (vclip.tasks.training): projects/retri/videoclip/coin_videoclip.yaml


def coin_training_split(folder: Path, split: str, val_fraction: float, seed: int) -> VideoSplit:
    """COIN.json's "training" videos (``train``, or the held-out ``val``) or its "testing" videos
    (``test``: the reference's validation split, on which its ``checkpoint_best.pt`` is chosen)."""
    path = require_file(Path(folder) / COIN_JSON, "COIN.json with a 'training' subset")
    coin = read_coin(path)
    training = [v for v in coin.videos.values() if v.subset == "training"]
    if not training:
        raise DataFormatError(path, "database[*].subset", "videos of subset 'training' (the fine-tuning data)", "none")
    too_high = sorted({s.label_id for v in training for s in v.segments if s.label_id > len(coin.labels)})
    if too_high:
        raise DataFormatError(path, "annotation ids of the training subset",
                              f"label ids 1..{len(coin.labels)} (the labels of the testing subset)",
                              f"ids {too_high[:5]}")
    if split == "test":
        videos = coin.testing()
    else:
        held_out = validation_videos([v.video_id for v in training], val_fraction, seed)
        videos = [v for v in training if (v.video_id in held_out) == (split == "val")]
    data = VideoSplit("coin", split, [], {}, {}, num_labels=len(coin.labels),
                      source=f"training list: {COIN_JSON} subset 'training', {len(training)} videos")
    cache = FeatureFolder(Path(folder) / FEATURES_DIR)
    outside, labelled = [], 0
    for video in videos:
        data.n_items += 1  # (training and testing are disjoint: a video id is one key of the database)
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
    report_lost_segments(data, path, outside, labelled, "annotated segments")
    return data


class CoinFinetuning(WindowFinetuning):
    """A new Linear head over the video tower's per-second states, cross-entropy per second (class 0
    background, padded seconds ignored): ``MMFusionSeparateActionSegmentation``, ``mmpt/losses/loss.py``."""

    loss_name = "segmentation_cross_entropy"
    test_selection = "lowest_test_loss"  # the reference's COIN "valid" split is its test split
    training_files = (COIN_JSON,)

    def no_training_note(self, folder: Path) -> str | None:
        if not any(video.subset == "training" for video in read_coin(Path(folder) / COIN_JSON).videos.values()):
            return f"no training videos ({COIN_JSON} has no 'training' subset): vclip.finetune cannot run here"
        return None

    def new_head(self, model, split):
        from vclip.tasks.heads import SegmentationHead

        return SegmentationHead(model.config.hidden_size, split.num_labels, model.config.initializer_range)

    def load_head(self, folder: Path):
        from vclip.tasks.heads import SegmentationHead

        return SegmentationHead.load(folder)

    def loss(self, model, head, batch: dict):
        from vclip.tasks.heads import segmentation_loss

        states = model.video_token_states(batch["vfeats"], batch["vmask"], attend_cls=False)  # (N, 32, H)
        return segmentation_loss(head(states), batch["targets"])

    def window_targets(self, split, video_id, windows, tokens) -> dict:
        import torch

        rows = self.padded_rows(split.targets[video_id], windows, IGNORE_INDEX, np.int64)
        return {"targets": torch.from_numpy(rows)}

    def evaluate(self, model, head, folder: Path, config):
        """COIN frame accuracy of a fine-tuned model as the zero-shot task measures it (windows of 32 every
        16 seconds, scores averaged over overlapping windows, with and without background), each second
        labelled by the head's argmax over the window-averaged logits (0 = background)."""
        from vclip.errors import CheckpointError
        from vclip.tasks.common import EvalConfig

        if head is None:
            raise CheckpointError("a fine-tuned COIN model needs its segmentation head (head.safetensors, head.json)")
        config = config or EvalConfig()
        data = COIN().load(Path(folder), config, FeatureFolder(Path(folder) / FEATURES_DIR))
        result = data.result("model")
        if head.num_labels != len(data.labels):
            raise DataFormatError(Path(folder) / COIN_JSON, "labels",
                                  f"the {head.num_labels} labels the fine-tuned head was trained on (another label "
                                  "set?)", str(len(data.labels)))
        if not data.video_ids:
            return result
        weight = head.classifier.weight.detach().float().cpu()
        bias = head.classifier.bias.detach().double().cpu().numpy()
        predictions = {}
        with eval_mode(model):
            # a Linear is a dot product with its weight rows plus a bias; averaging windows commutes with it
            stream = ((v, data.features.features(v), weight) for v in data.video_ids)
            for video, scores in window_scores(model, stream, config, total=len(data.video_ids), desc="coin videos"):
                predictions[video] = np.argmax(scores + bias, axis=1)
        result.metrics = data.metrics(predictions)
        result.notes.append("fine-tuned segmentation head: each second takes the head's argmax (0 = background)")
        return result


COIN.finetuning = CoinFinetuning("coin", coin_training_split)
