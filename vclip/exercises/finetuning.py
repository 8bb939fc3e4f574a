"""Checkers for the exercises of chapter 08 (fine-tuning on the downstream tasks).

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (every task zero-shot and fine-tuned). Reference:
fairseq ``examples/MMPT``, ``projects/retri/videoclip/*_videoclip.yaml`` (the recipes) and
``mmpt/evaluators/predictor.py`` (``QAPredictor``: the argmax of five candidate scores).

Each checker grades against the world's truth (:func:`vclip.synthetic.load_truth`), the package's losses
(:data:`vclip.finetune.LOSS_NAMES`), a fine-tuning run's summary, or the committed benchmark result of
``benchmarks/finetune.py``. :func:`qa_choices` gives the package's answer to every multiple-choice item, so
that two models can be compared item by item. See :mod:`vclip.exercises` for the shared helpers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from vclip.exercises import Feedback, compare_number, compare_set, not_answered

__all__ = ["check_background", "check_chance_losses", "check_direction", "check_selection", "kept_early",
           "qa_choices", "coin_background_share"]


def qa_choices(model, folder: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The candidate each MSR-VTT multiple-choice item gets from ``model`` and the correct one: (N,), (N,).

    Scored exactly as :class:`vclip.tasks.qa.MsrvttQA` scores (pooled video . pooled text, the argmax of
    five); a tie goes to the first candidate here, while the accuracy counts ties as wrong.
    """
    from vclip.tasks import load_task_data
    from vclip.tasks.common import EvalConfig, encode_clips_once, encode_texts_once, eval_mode

    config = EvalConfig(progress=False)
    data = load_task_data("msrvtt_qa", folder, config)
    flat = [text for options in data.candidates for text in options]
    with eval_mode(model):
        text = encode_texts_once(model, flat, config, desc="msrvtt_qa candidates")  # (5N, H)
        video = encode_clips_once(model, data.video_ids, data.clips, config, desc="msrvtt_qa videos")  # (N, H)
    n = len(data.rows)
    scores = (text.view(n, 5, -1) @ video.unsqueeze(-1)).squeeze(-1).double().numpy()  # (N, 5)
    return scores.argmax(axis=1), np.asarray(data.answers)


def check_direction(answer) -> Feedback:
    """Exercise 08.1: the loss whose softmax is the multiple-choice test's (``"video_to_text"`` or
    ``"text_to_video"``), graded against the loss the package trains ``msrvtt_qa`` with."""
    from vclip.training.finetuning import LOSS_NAMES

    expected = LOSS_NAMES["msrvtt_qa"]
    if answer is None:
        return not_answered("08.1", 'direction ("video_to_text" or "text_to_video")')
    if answer not in ("video_to_text", "text_to_video"):
        return Feedback("08.1", False, f'direction should be "video_to_text" or "text_to_video", got {answer!r}')
    if answer == expected:
        return Feedback("08.1", True, f"{answer}: the test asks a video to pick one of five texts, a softmax over "
                                      f"texts; vclip.finetune.LOSS_NAMES['msrvtt_qa'] is {expected!r}")
    return Feedback("08.1", False, f"{answer} is a softmax over videos for each text; the test asks a video to pick "
                                   f"one of five texts, and vclip.finetune.LOSS_NAMES['msrvtt_qa'] is {expected!r}")


def kept_early(payload: dict) -> set[tuple[str, int]]:
    """The (task, seed) runs of a ``benchmarks/finetune.py`` result whose kept epoch is not their last."""
    return {(task, run["seed"]) for task, result in payload["results"].items() for run in result["runs"]
            if run["selected_epoch"] < result["recipe"]["epochs"]}


def check_selection(answer, payload: dict) -> Feedback:
    """Exercise 08.2: the runs of the committed benchmark in which selection kept an earlier epoch than the
    last (a set of ``(task, seed)``), graded against the benchmark's ``selected_epoch`` and recipes."""
    if answer is not None:
        try:
            answer = {(str(task), int(seed)) for task, seed in answer}
        except (TypeError, ValueError):
            return Feedback("08.2", False, f"kept_early should be a set of (task, seed) pairs, got {answer!r}")
    return compare_set("08.2", "your runs with an earlier kept epoch", answer, kept_early(payload),
                       "the benchmark's selected_epoch")


def coin_background_share(coin_folder: str | Path) -> float:
    """Percent of the seconds of COIN's testing videos whose latent step is background, from the world's
    truth (``synthetic_truth.json``), over the seconds the evaluation scores."""
    from vclip.data.truth import load_truth
    from vclip.tasks import load_task_data
    from vclip.tasks.common import EvalConfig

    truth = load_truth(coin_folder)
    data = load_task_data("coin", coin_folder, EvalConfig(progress=False))
    seconds = np.concatenate([truth.seconds(v)[: len(data.targets[v])] for v in data.video_ids])
    return float(100.0 * np.mean(seconds == -1))


def check_background(share, bound, coin_folder: str | Path, payload: dict) -> list[Feedback]:
    """Exercise 08.3: (a) the background share of COIN's test seconds, from the world's truth; (b) the
    highest frame accuracy without background that the fine-tuned head's background rate allows (mean over
    the benchmark's seeds): every second it calls background beyond the true share is a step second lost.
    """
    truth_share = coin_background_share(coin_folder)
    predicted = payload["results"]["coin"]["predicted_background"]["mean"]
    ceiling = 100.0 * (1.0 - max(predicted - truth_share, 0.0) / (100.0 - truth_share))
    return [compare_number("08.3", "your background share (%)", share, truth_share,
                           "the world's truth (synthetic_truth.json)", tolerance=0.05),
            compare_number("08.3", "your ceiling on frame_acc_no_bg (%)", bound, ceiling,
                           f"100 x (1 - (predicted background {predicted:.2f} - true {truth_share:.2f}) / "
                           f"(100 - {truth_share:.2f}))", tolerance=0.05)]


def check_chance_losses(train_chance, val_chance, train_batch: int, val_batch: int) -> list[Feedback]:
    """Exercise 08.4: the loss of scores that do not tell the candidates apart (a uniform softmax), for the
    training batches and for the validation batch: log of the number of candidates in each softmax."""
    return [compare_number("08.4", "your chance training loss", train_chance, math.log(train_batch),
                           f"log({train_batch}), the training batch's candidates", tolerance=5e-3),
            compare_number("08.4", "your chance validation loss", val_chance, math.log(val_batch),
                           f"log({val_batch}), the validation batch's candidates", tolerance=5e-3)]
