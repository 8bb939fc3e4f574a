"""Zero-shot MSR-VTT multiple-choice VideoQA: pick which of 5 sentences describes the video.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4.2 (VideoQA, zero-shot). Reference: fairseq
``examples/MMPT``, ``projects/retri/videoclip/test_vttqa_zs.yaml``; ``mmpt/processors/dsprocessor.py``
``MSRVTTQAMetaProcessor`` (tab-separated ``MSR_MC_test.csv``, ``vid_key`` "msrXXXX" -> feature
"videoXXXX", 0-based ``answer``) and ``MSRVTTQAAligner`` (the same video with 5 texts);
``mmpt/evaluators/predictor.py`` ``QAPredictor`` (score = pooled_video . pooled_text, argmax of 5) and
``metric.py`` ``QAMetric`` (accuracy). No question text is used: only the candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vclip.data.formats import DataFormatError, _read_csv, _text
from vclip.metrics import qa_accuracy
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

QA_CSV = "MSR_MC_test.csv"


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


@dataclass
class QASet:
    folder: Path
    n_items: int
    rows: list[int]
    video_ids: list[str]
    candidates: list[list[str]]
    answers: np.ndarray  # (N,) 0-based
    clips: dict  # video id -> (T, 512)
    missing: list[str]


def load_qa(folder: str | Path) -> QASet:
    """Read ``MSR_MC_test.csv`` and the features of its videos (absent ones skipped and counted)."""
    folder = Path(folder)
    items = read_msrvtt_mc(require_file(folder / QA_CSV, "MSR_MC_test.csv (tab-separated vid_key, a1..a5, answer)"))
    cache = FeatureCache(folder)
    rows, video_ids, candidates, answers, clips, missing = [], [], [], [], {}, []
    for row, item in enumerate(items):
        if not cache.has(item.video_id):
            missing.append(item.video_id)
            continue
        clips[item.video_id] = cache.get(item.video_id)
        rows.append(row)
        video_ids.append(item.video_id)
        candidates.append(item.candidates)
        answers.append(item.answer)
    return QASet(folder, len(items), rows, video_ids, candidates, np.asarray(answers, dtype=np.int64), clips, missing)


def _result(data: QASet, scorer: str) -> TaskResult:
    return TaskResult.start("msrvtt_qa", scorer, data.folder, data.n_items, len(data.rows), data.missing)


def evaluate_qa(model, folder: str | Path, config: EvalConfig | None = None) -> TaskResult:
    """Zero-shot multiple-choice accuracy of ``model`` (percent; ties count as wrong)."""
    config = config or EvalConfig()
    data = load_qa(folder)
    result = _result(data, "model")
    if not data.rows:
        return result
    flat = [text for options in data.candidates for text in options]
    with eval_mode(model):
        text = encode_texts_once(model, flat, config, desc="msrvtt_qa candidates")  # (5N, H)
        video = encode_clips_once(model, data.video_ids, data.clips, config, desc="msrvtt_qa videos")  # (N, H)
    n = len(data.rows)
    scores = (text.view(n, 5, -1) @ video.unsqueeze(-1)).squeeze(-1).double().numpy()  # (N, 5)
    result.metrics = qa_accuracy(scores, data.answers)
    return result


def qa_chance(folder: str | Path, config: EvalConfig | None = None) -> TaskResult:
    """Chance: random candidate scores, mean over draws (about 20% with 5 candidates)."""
    config = config or EvalConfig()
    data = load_qa(folder)
    result = _result(data, "chance")
    if data.rows:
        rng = np.random.default_rng(config.baseline_seed)
        result.metrics = mean_of_dicts([qa_accuracy(rng.standard_normal((len(data.rows), 5)), data.answers)
                                        for _ in range(config.baseline_repeats)])
    return result


def qa_oracle(folder: str | Path, truth, config: EvalConfig | None = None) -> TaskResult:
    """Oracle: a candidate scores the fraction of the video's first 32 seconds showing its latent step;
    ties broken at random (mean of draws)."""
    config = config or EvalConfig()
    data = load_qa(folder)
    result = _result(data, "oracle")
    if not data.rows:
        return result
    if len(truth.candidate_steps) != data.n_items:
        raise ValueError(f"{data.folder}: synthetic_truth.json has {len(truth.candidate_steps)} candidate rows "
                         f"for {data.n_items} questions")
    scores = np.zeros((len(data.rows), 5))
    for q, (row, video_id) in enumerate(zip(data.rows, data.video_ids)):
        shown = truth.seconds(video_id)[:MAX_VIDEO_LEN]
        scores[q] = [(shown == step).mean() for step in truth.candidate_steps[row]]
    rng = np.random.default_rng(config.baseline_seed)
    result.metrics = mean_of_dicts([qa_accuracy(scores + 1e-6 * rng.random(scores.shape), data.answers)
                                    for _ in range(config.baseline_repeats)])
    return result
