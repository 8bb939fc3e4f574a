"""Chapter 06's checkers (vclip.exercises.zero_shot): a right answer computed with the package passes, a wrong one
fails naming both numbers, an unanswered one says so without computing anything; and the library pieces the
chapter opens one item with (exact DiDeMo chance, the per-item scores) agree with the evaluation."""

import numpy as np
import pytest

from vclip.exercises.zero_shot import (
    chance_spread,
    check_chance_recall,
    check_chance_spread,
    check_first_chunk_rank1,
    first_chunk_rank1,
)
from vclip.metrics import DIDEMO_MOMENTS, didemo_metrics
from vclip.tasks import EvalConfig, evaluate_baselines, load_task_data
from vclip.tasks.didemo import expected_chance_rank1


def test_unanswered_checkers_say_so_without_reading_anything(tmp_path):
    missing = tmp_path / "no-world"  # nothing is read: a None answer is graded before any data is loaded
    for feedback in (check_chance_recall(None, missing), check_chance_spread(None, missing),
                     check_first_chunk_rank1(None, missing)):
        assert not feedback.passed and "no answer yet" in feedback.message


def test_chance_recall(synthetic_world):
    n = len(load_task_data("msrvtt", synthetic_world / "msrvtt", EvalConfig(progress=False)).rows)
    assert check_chance_recall(100 * 5 / n, synthetic_world, task="msrvtt", k=5).passed
    wrong = check_chance_recall(5.0, synthetic_world, task="msrvtt", k=5)  # 5 %: "K percent", the usual slip
    assert not wrong.passed and "is 5;" in wrong.message and f"{100 * 5 / n:.4g}" in wrong.message
    assert check_chance_recall(round(100 / n, 2), synthetic_world, task="msrvtt", k=1).passed  # rounded to 0.01


def test_chance_spread(synthetic_world):
    draws = [evaluate_baselines("didemo", synthetic_world / "didemo",
                                EvalConfig(progress=False, baseline_repeats=1, baseline_seed=s))["chance"].metrics["rank@1"]
             for s in range(10)]
    spread = max(draws) - min(draws)
    assert spread > 0 and chance_spread(synthetic_world) == pytest.approx(spread)
    assert check_chance_spread(spread, synthetic_world).passed
    wrong = check_chance_spread(spread + 1.0, synthetic_world)
    assert not wrong.passed and "off by 1" in wrong.message and f"{spread:.4g}" in wrong.message


def test_first_chunk_rank1_is_the_share_of_queries_agreeing_on_the_first_chunk(synthetic_world):
    data = load_task_data("didemo", synthetic_world / "didemo", EvalConfig(progress=False))
    by_truth = 100 * np.mean([times.count((0, 0)) >= 3 for times in data.times])  # every moment is valid here
    assert data.valid().all() and first_chunk_rank1(synthetic_world) == pytest.approx(by_truth)
    assert check_first_chunk_rank1(by_truth, synthetic_world).passed
    wrong = check_first_chunk_rank1(100 / 21, synthetic_world)  # "chance", a plausible wrong answer
    assert not wrong.passed and f"{by_truth:.4g}" in wrong.message and f"{100 / 21:.4g}" in wrong.message


def test_expected_chance_rank1_by_hand_and_by_draws():
    times = [[(0, 0)] * 4, [(0, 0), (0, 0), (1, 1), (2, 2)], [(0, 0), (0, 0), (0, 0), (1, 1)], [(2, 2)] * 2]
    valid = np.ones((4, 21), dtype=bool)
    valid[3, 10:] = False  # 10 valid moments: (2, 2) is one of them
    # query 0: 1/21; query 1: nobody's moment chosen by 3 -> 0; query 2: 1/21; query 3: both annotators -> 1/10
    assert expected_chance_rank1(times, valid) == pytest.approx(100 * (2 / 21 + 1 / 10) / 4)
    rng = np.random.default_rng(0)
    draws = [didemo_metrics(rng.standard_normal(valid.shape), times, valid)["rank@1"] for _ in range(4000)]
    assert np.mean(draws) == pytest.approx(expected_chance_rank1(times, valid), abs=1.0)
    assert len(DIDEMO_MOMENTS) == 21


@pytest.mark.slow
def test_item_scores_are_the_evaluation_scores(synthetic_world):
    """candidate_scores, moment_scores and predict_videos are what the tasks score with (an untrained model)."""
    import torch

    from vclip.metrics import coin_frame_accuracy, qa_accuracy
    from vclip.model import VideoCLIP
    from vclip.tasks import evaluate_task
    from vclip.tasks.coin import predict_videos
    from vclip.tasks.didemo import moment_scores
    from vclip.tasks.qa import candidate_scores

    torch.manual_seed(0)
    model = VideoCLIP.from_preset("tiny").eval()
    config = EvalConfig(progress=False)
    qa = load_task_data("msrvtt_qa", synthetic_world / "msrvtt_qa", config)
    assert qa_accuracy(candidate_scores(model, qa, config), qa.answers)["accuracy"] == pytest.approx(
        evaluate_task(model, "msrvtt_qa", synthetic_world / "msrvtt_qa", config).metrics["accuracy"])
    didemo = load_task_data("didemo", synthetic_world / "didemo", config)
    assert didemo_metrics(moment_scores(model, didemo, config), didemo.times, didemo.valid())["mIoU"] == pytest.approx(
        evaluate_task(model, "didemo", synthetic_world / "didemo", config).metrics["mIoU"])
    coin = load_task_data("coin", synthetic_world / "coin", config)
    predictions, _ = predict_videos(model, coin, config)
    assert coin_frame_accuracy([predictions[v] for v in coin.video_ids], [coin.targets[v] for v in coin.video_ids])[
        "frame_acc"] == pytest.approx(evaluate_task(model, "coin", synthetic_world / "coin", config).metrics["frame_acc"])
