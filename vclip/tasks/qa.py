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

from vclip.data.check import check_whole_video_items, note_special_tokens
from vclip.data.formats import parse_text, read_csv_rows, refuse_duplicates
from vclip.errors import DataFormatError
from vclip.metrics import qa_accuracy
from vclip.tasks.common import (
    TaskResult,
    encode_clips_once,
    encode_texts_once,
    eval_mode,
    mean_of_dicts,
    require_file,
)
from vclip.tasks.registry import RECALLED, PaperNumber, Task, register_task
from vclip.tasks.training import PairFinetuning
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
    """Read ``MSR_MC_test.csv``: tab-separated ``vid_key, a1..a5, answer`` (0-based); one question per video
    (a ``vid_key`` twice is refused, naming both lines)."""
    items = []
    rows = read_csv_rows(path, MSRVTT_QA_COLUMNS, delimiter="\t")
    refuse_duplicates(path, ((f"line {line} vid_key", row["vid_key"].strip()) for line, row in rows),
                      "vid_keys (one question per video)")
    for line, row in rows:
        vid_key = parse_text(path, line, "vid_key", row["vid_key"])
        candidates = [parse_text(path, line, f"a{i}", row[f"a{i}"]) for i in range(1, 6)]
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

    def result(self, scorer: str) -> TaskResult:
        return TaskResult.start("msrvtt_qa", scorer, self.folder, self.n_items, len(self.rows), self.missing)


def qa_set(folder: Path, items: list[MultipleChoice], features) -> QASet:
    """The questions whose video has features (absent ones skipped and counted)."""
    rows, video_ids, candidates, answers, clips, missing = [], [], [], [], {}, []
    for row, item in enumerate(items):
        if item.video_id not in features:
            missing.append(item.video_id)
            continue
        clips[item.video_id] = features.features(item.video_id)
        rows.append(row)
        video_ids.append(item.video_id)
        candidates.append(item.candidates)
        answers.append(item.answer)
    return QASet(folder, len(items), rows, video_ids, candidates, np.asarray(answers, dtype=np.int64), clips, missing)


def candidate_scores(model, data: QASet, config) -> np.ndarray:
    """(N, 5) float64: the pooled video of each question against the pooled text of each of its 5 candidates
    (the reference's ``QAPredictor``; the answer is the argmax, ties counting against the model)."""
    flat = [text for options in data.candidates for text in options]
    with eval_mode(model):
        text = encode_texts_once(model, flat, config, desc="msrvtt_qa candidates")  # (5N, H)
        video = encode_clips_once(model, data.video_ids, data.clips, config, desc="msrvtt_qa videos")  # (N, H)
    n = len(data.rows)
    return (text.view(n, 5, -1) @ video.unsqueeze(-1)).squeeze(-1).double().numpy()


@register_task
class MsrvttQA(Task):
    """MSR-VTT multiple choice: which of 5 sentences describes the video (accuracy; ties count as wrong)."""

    name = "msrvtt_qa"
    title = "MSR-VTT multiple-choice VideoQA"
    markers = (QA_CSV,)
    metrics = ("accuracy",)
    protocol = "5 candidate sentences per video, pooled video . pooled text, accuracy"
    paper = (
        PaperNumber("msrvtt_qa", "zero-shot", "accuracy", 73.9, "section 4, VideoQA table", RECALLED, confirmed=False),
        PaperNumber("msrvtt_qa", "fine-tuned", "accuracy", 92.1, "section 4, VideoQA table", RECALLED, confirmed=False),
    )

    def load(self, folder, config, features) -> QASet:
        """``MSR_MC_test.csv`` and the features of its videos."""
        folder = Path(folder)
        items = read_msrvtt_mc(require_file(folder / QA_CSV, "MSR_MC_test.csv (tab-separated vid_key, a1..a5, answer)"))
        return qa_set(folder, items, features)

    def n_evaluable(self, data: QASet) -> int:
        return len(data.rows)

    def score(self, model, data: QASet, config) -> TaskResult:
        """Zero-shot multiple-choice accuracy (percent; ties count as wrong)."""
        result = data.result("model")
        result.metrics = qa_accuracy(candidate_scores(model, data, config), data.answers)
        return result

    def chance(self, data: QASet, config) -> TaskResult:
        """Random candidate scores, mean over draws (about 20% with 5 candidates)."""
        result = data.result("chance")
        rng = np.random.default_rng(config.baseline_seed)
        result.metrics = mean_of_dicts([qa_accuracy(rng.standard_normal((len(data.rows), 5)), data.answers)
                                        for _ in range(config.baseline_repeats)])
        return result

    def oracle(self, data: QASet, truth, config) -> TaskResult:
        """A candidate scores the fraction of the video's first 32 seconds showing its latent step; ties
        broken at random (mean of draws)."""
        result = data.result("oracle")
        if len(truth.candidate_steps) != data.n_items:
            raise DataFormatError(Path(data.folder) / "synthetic_truth.json", "candidate_steps",
                                  f"one row per question ({data.n_items})", str(len(truth.candidate_steps)))
        scores = np.zeros((len(data.rows), 5))
        for q, (row, video_id) in enumerate(zip(data.rows, data.video_ids)):
            shown = truth.seconds(video_id)[:MAX_VIDEO_LEN]
            scores[q] = [(shown == step).mean() for step in truth.candidate_steps[row]]
        rng = np.random.default_rng(config.baseline_seed)
        result.metrics = mean_of_dicts([qa_accuracy(scores + 1e-6 * rng.random(scores.shape), data.answers)
                                        for _ in range(config.baseline_repeats)])
        return result

    def check(self, report, path: Path, features_dir: Path, check_values: bool) -> None:
        file = path if path.is_file() else path / QA_CSV
        items = read_msrvtt_mc(file)
        note_special_tokens(report, ((f"{item.video_id} a{i + 1}", text) for item in items
                                     for i, text in enumerate(item.candidates)), "answer candidates")
        check_whole_video_items(report, features_dir, items, "items", check_values)

    def recognises(self, path, columns, document) -> bool:
        return (columns is not None and {"vid_key", "a1", "answer"} <= columns) or super().recognises(path, columns, document)


def _qa_training_split(folder: Path, split: str, val_fraction: float, seed: int):
    """MSR-VTT retrieval's training split (the reference trains QA on it, ``vttqa_videoclip.yaml``), the
    videos of ``MSR_MC_test.csv`` left out."""
    from vclip.tasks.retrieval import msrvtt_training_split

    test = {item.video_id for item in read_msrvtt_mc(require_file(folder / QA_CSV, "MSR_MC_test.csv"))}
    return msrvtt_training_split("msrvtt_qa", folder, split, val_fraction, seed, test)


# The reference's recipe: projects/retri/videoclip/vttqa_videoclip.yaml (V2TContraLoss: a video picks its caption)
MsrvttQA.finetuning = PairFinetuning("msrvtt_qa", _qa_training_split, "video_to_text",
                                     training_files=("MSRVTT_train.9k.csv", "MSRVTT_train.csv"))
