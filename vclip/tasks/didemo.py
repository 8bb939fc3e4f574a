"""Zero-shot DiDeMo moment localisation: rank the 21 candidate moments of a video for a sentence.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (DiDeMo, zero-shot rank@1 16.6, rank@5 46.9).
Reference: fairseq ``examples/MMPT``, ``projects/retri/videoclip/test_didemo_zs.yaml``;
``mmpt/processors/dsprocessor.py`` (``DiDeMoMetaProcessor``: ``video``, ``description`` of
``test_data.json``; ``DiDeMoAligner`` = ``DSAligner``: first 32 seconds); ``mmpt/evaluators/predictor.py``
``DiDeMoPredictor``: the video tower's last-layer states at positions 1..32 (padding included), a
moment (s, e) is the **unmasked** mean of rows [5s, 5(e+1)) (padded rows count, a quirk), its score is
the dot product with the pooled text, and only moments with at least one real second are ranked;
``metric.py`` ``DiDeMoMetric`` (:func:`vclip.metrics.didemo_metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vclip.data.check import check_videos, note_special_tokens
from vclip.data.formats import read_json, refuse_duplicates
from vclip.errors import DataFormatError
from vclip.metrics import DIDEMO_MOMENTS, didemo_metrics, moment_iou
from vclip.tasks.common import (
    TaskResult,
    encode_texts_once,
    eval_mode,
    mean_of_dicts,
    model_device,
    require_file,
    run_video_batches,
)
from vclip.tasks.registry import PaperNumber, Task, register_task
from vclip.tokenizer import MAX_VIDEO_LEN

if TYPE_CHECKING:  # torch is imported in the functions that score: `vclip.data check` runs without it
    import torch

DIDEMO_JSON = "test_data.json"
CHUNK_SECONDS = 5


# --------------------------------------------------------------------------------------------------
# DiDeMo: test_data.json


@dataclass
class DidemoQuery:
    video: str  # the feature file name, verbatim
    description: str
    times: list[tuple[int, int]]  # one [start, end] 5-second chunk index pair per annotator, inclusive
    annotation_id: str | int | None = None


def read_didemo(path: str | Path) -> list[DidemoQuery]:
    """Read DiDeMo ``test_data.json``: a list of ``{"video", "description", "times": [[s, e], ...]}``.

    A record repeated (same video, description and times), or an ``annotation_id`` twice, is refused.
    """
    path = Path(path)
    data = read_json(path)
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
    refuse_duplicates(path, ((f"[{index}]", (q.video, q.description, str(q.times))) for index, q in enumerate(queries)),
                      "records (the same video, description and times listed twice)")
    refuse_duplicates(path, ((f"[{index}].annotation_id", q.annotation_id) for index, q in enumerate(queries)
                             if q.annotation_id is not None), "annotation_ids")
    return queries


@dataclass
class DidemoSet:
    folder: Path
    n_items: int
    rows: list[int]
    videos: list[str]
    descriptions: list[str]
    times: list[list[tuple[int, int]]]
    num_seconds: dict  # video -> feature rows
    clips: dict  # video -> (T, 512)
    missing: list[str]

    def valid(self) -> np.ndarray:
        """(N, 21) bool: the moments with at least one real second among the first 32 (as the reference)."""
        mask = np.zeros((len(self.rows), len(DIDEMO_MOMENTS)), dtype=bool)
        for q, video in enumerate(self.videos):
            seconds = min(self.num_seconds[video], MAX_VIDEO_LEN)
            for m, (s, _) in enumerate(DIDEMO_MOMENTS):
                mask[q, m] = CHUNK_SECONDS * s < seconds
        return mask

    def result(self, scorer: str) -> TaskResult:
        return TaskResult.start("didemo", scorer, self.folder, self.n_items, len(self.rows), self.missing)


def didemo_set(folder: Path, queries: list[DidemoQuery], features) -> DidemoSet:
    """The queries whose video has features (absent ones skipped and counted)."""
    data = DidemoSet(folder, len(queries), [], [], [], [], {}, {}, [])
    for row, query in enumerate(queries):
        if query.video not in features:
            data.missing.append(query.video)
            continue
        video = features.features(query.video)
        data.clips[query.video] = video
        data.num_seconds[query.video] = len(video)
        data.rows.append(row)
        data.videos.append(query.video)
        data.descriptions.append(query.description)
        data.times.append(list(query.times))
    return data


def moment_vectors(hidden: torch.Tensor, vmask: torch.Tensor, pooling: str = "unmasked") -> torch.Tensor:
    """The 21 moment vectors of one video from its 32 per-second states.

    Args:
        hidden: (32, H) last-layer states at positions 1..32 (padding rows included).
        vmask: (32,) bool, True on real seconds.
        pooling: "unmasked" (the reference: mean over all 5(e - s + 1) rows, padded ones too) or
            "masked" (mean over the real seconds only; a moment without any is left at zero).

    Returns:
        (21, H), in the order of :data:`vclip.metrics.DIDEMO_MOMENTS`.
    """
    import torch

    vectors = []
    for s, e in DIDEMO_MOMENTS:
        rows = slice(CHUNK_SECONDS * s, CHUNK_SECONDS * (e + 1))
        if pooling == "unmasked":
            vectors.append(hidden[rows].mean(dim=0))
        else:
            weights = vmask[rows].to(hidden.dtype)
            vectors.append((hidden[rows] * weights[:, None]).sum(0) / weights.sum().clamp(min=1.0))
    return torch.stack(vectors)


def moment_scores(model, data: DidemoSet, config) -> np.ndarray:
    """(N, 21) float64: each query's pooled text against the 21 moment vectors of its video
    (:func:`moment_vectors` with ``config.didemo_pooling``), in the order of :data:`DIDEMO_MOMENTS`."""
    import torch

    videos = list(dict.fromkeys(data.videos))
    with eval_mode(model):
        text = encode_texts_once(model, data.descriptions, config, desc="didemo descriptions")  # (N, H)

        def moments_of_batch(vfeats: torch.Tensor, vmask: torch.Tensor) -> torch.Tensor:
            hidden = model.video_token_states(vfeats, vmask, attend_cls=True)  # (B, 32, H): all 32 positions
            return torch.stack([moment_vectors(h, m, config.didemo_pooling) for h, m in zip(hidden, vmask)])

        per_video = run_video_batches([data.clips[v] for v in videos], config, "didemo videos", moments_of_batch,
                                      model_device(model))
    moments = dict(zip(videos, per_video))  # video -> (21, H)
    return torch.stack([moments[v] @ t for v, t in zip(data.videos, text)]).double().numpy()


def expected_chance_rank1(times: list[list[tuple[int, int]]], valid: np.ndarray) -> float:
    """The rank@1 (percent) a random scorer gets on average, exactly, from the annotations alone.

    With random scores every valid moment is ranked first with probability ``1 / (valid moments)``. A query
    is at rank 1 when the mean of its best 3 annotator ranks (:func:`vclip.metrics.didemo_metrics`) is 1,
    i.e. when the first moment is the choice of ``min(3, n)`` of its ``n`` annotators whose moment is valid.
    So a query contributes ``#{valid moments chosen by min(3, n) annotators} / #{valid moments}``.
    """
    index_of = {moment: k for k, moment in enumerate(DIDEMO_MOMENTS)}
    chances = []
    for q, annotated in enumerate(times):
        chosen = [index_of[tuple(t)] for t in annotated if valid[q, index_of[tuple(t)]]]
        need = min(3, len(chosen))
        hits = sum(1 for k in set(chosen) if need and chosen.count(k) >= need)
        chances.append(hits / valid[q].sum())
    return float(100.0 * np.mean(chances))


@register_task
class DiDeMo(Task):
    """DiDeMo moment localisation: rank the 21 candidate moments (six 5-second chunks) for a sentence."""

    name = "didemo"
    title = "DiDeMo moment localisation"
    markers = (DIDEMO_JSON,)
    metrics = ("rank@1", "rank@5", "mIoU")
    protocol = ("21 moments over six 5-s chunks; moment = **unmasked** mean of the video tower's rows (quirk "
                "kept, `--didemo-pooling masked` to change); only moments with a real second ranked; rank@1, "
                "rank@5 (mean of the best 3 annotator ranks), mIoU (mean of the top 3 IoUs)")
    paper = (
        PaperNumber("didemo", "zero-shot", "rank@1", 16.6, "section 4, DiDeMo table"),
        PaperNumber("didemo", "zero-shot", "rank@5", 46.9, "section 4, DiDeMo table"),
    )

    def load(self, folder, config, features) -> DidemoSet:
        """``test_data.json`` and the features of its videos."""
        folder = Path(folder)
        queries = read_didemo(require_file(folder / DIDEMO_JSON, "DiDeMo test_data.json (video, description, times)"))
        return didemo_set(folder, queries, features)

    def n_evaluable(self, data: DidemoSet) -> int:
        return len(data.rows)

    def score(self, model, data: DidemoSet, config) -> TaskResult:
        """Zero-shot rank@1, rank@5 and mIoU (percent) over the 21 candidate moments."""
        result = data.result("model")
        scores = moment_scores(model, data, config)
        result.metrics = didemo_metrics(scores, data.times, data.valid())
        if config.didemo_pooling != "unmasked":
            result.notes.append(f"moment pooling: {config.didemo_pooling} (the reference averages padded rows too)")
        return result

    def chance(self, data: DidemoSet, config) -> TaskResult:
        """Random moment scores, mean over draws."""
        result = data.result("chance")
        rng = np.random.default_rng(config.baseline_seed)
        valid = data.valid()
        result.metrics = mean_of_dicts([
            didemo_metrics(rng.standard_normal(valid.shape), data.times, valid) for _ in range(config.baseline_repeats)
        ])
        return result

    def oracle(self, data: DidemoSet, truth, config) -> TaskResult:
        """A moment scores its IoU with the true (latent) moment of the sentence, so the true moment is
        ranked first; the annotators' ``times`` it is measured against may still differ from it."""
        result = data.result("oracle")
        if len(truth.moments) != data.n_items:
            raise DataFormatError(Path(data.folder) / "synthetic_truth.json", "moments",
                                  f"one per query ({data.n_items})", str(len(truth.moments)))
        scores = np.array([[moment_iou(m, truth.moments[row]) for m in DIDEMO_MOMENTS] for row in data.rows])
        rng = np.random.default_rng(config.baseline_seed)
        valid = data.valid()
        result.metrics = mean_of_dicts([didemo_metrics(scores + 1e-6 * rng.random(scores.shape), data.times, valid)
                                        for _ in range(config.baseline_repeats)])
        return result

    def check(self, report, path: Path, features_dir: Path, check_values: bool) -> None:
        queries = read_didemo(path if path.is_file() else path / DIDEMO_JSON)
        note_special_tokens(report, ((q.video, q.description) for q in queries), "queries")
        report.counts["queries"] = len(queries)
        seconds = check_videos(report, features_dir, [q.video for q in queries], check_values)
        report.usable_items = sum(q.video in seconds for q in queries)
        report.counts["queries with features"] = report.usable_items
        long = sum(1 for s in seconds.values() if s > 30)
        if long:
            report.notes.append(f"{long} videos are longer than 30 s (the reference uses the first 30 s: 6 chunks)")

    def recognises(self, path, columns, document) -> bool:
        return isinstance(document, list) or super().recognises(path, columns, document)
