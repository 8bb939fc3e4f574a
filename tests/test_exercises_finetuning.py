"""Chapter 08's exercise checkers (vclip.exercises.finetuning): the package's or the truth's answer passes, a
wrong one fails naming both values."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from vclip.exercises import finetuning as ex
from vclip.training.finetuning import LOSS_NAMES

REPO = Path(__file__).resolve().parents[1]


def test_direction():
    assert ex.check_direction(LOSS_NAMES["msrvtt_qa"]).passed
    other = "text_to_video" if LOSS_NAMES["msrvtt_qa"] == "video_to_text" else "video_to_text"
    wrong = ex.check_direction(other)
    assert not wrong.passed and other in wrong.message and LOSS_NAMES["msrvtt_qa"] in wrong.message
    assert "no answer yet" in ex.check_direction(None).message
    assert "should be" in ex.check_direction("softmax").message


def _payload():
    runs = lambda kept: [{"seed": s, "selected_epoch": e} for s, e in enumerate(kept)]  # noqa: E731
    return {"results": {"a": {"recipe": {"epochs": 5}, "runs": runs([5, 4, 5])},
                        "b": {"recipe": {"epochs": 3}, "runs": runs([3, 3, 3])}}}


def test_selection_on_a_handmade_payload():
    payload = _payload()
    assert ex.kept_early(payload) == {("a", 1)}
    assert ex.check_selection([("a", 1)], payload).passed
    wrong = ex.check_selection({("a", 1), ("b", 0)}, payload)
    assert not wrong.passed and "('b', 0)" in wrong.message
    assert "no answer yet" in ex.check_selection(None, payload).message
    assert "(task, seed) pairs" in ex.check_selection(5, payload).message


def test_selection_on_the_committed_benchmark():
    payload = json.loads((REPO / "benchmarks" / "results" / "finetune.json").read_text())
    expected = {(name, run["seed"]) for name, result in payload["results"].items() for run in result["runs"]
                if run["selected_epoch"] != result["recipe"]["epochs"]}
    assert ex.check_selection(expected, payload).passed


def test_chance_losses():
    assert all(f.passed for f in ex.check_chance_losses(math.log(64), math.log(50), 64, 50))
    wrong = ex.check_chance_losses(math.log(64), math.log(64), 64, 50)
    assert wrong[0].passed and not wrong[1].passed
    assert "4.159" in wrong[1].message and "3.912" in wrong[1].message


def test_background_against_the_truth(synthetic_world):
    from vclip.tasks import load_task_data

    coin = synthetic_world / "coin"
    test = load_task_data("coin", coin)
    share = 100 * np.mean(np.concatenate([np.asarray(test.targets[v]) == 0 for v in test.video_ids]))  # the labels' way
    assert ex.coin_background_share(coin) == pytest.approx(share)
    payload = {"results": {"coin": {"predicted_background": {"mean": share + 10.0}}}}
    ceiling = 100 * (1 - 10.0 / (100 - share))
    assert all(f.passed for f in ex.check_background(share, ceiling, coin, payload))
    wrong = ex.check_background(share + 1, 100.0, coin, payload)
    assert not any(f.passed for f in wrong)
    assert f"{share + 1:.4g}" in wrong[0].message and f"{share:.4g}" in wrong[0].message
    assert f"{ceiling:.4g}" in wrong[1].message and "100" in wrong[1].message


def test_qa_choices_score_as_the_task_does(synthetic_world):
    import torch

    from vclip.model import VideoCLIP
    from vclip.tasks import evaluate_task
    from vclip.tasks.common import EvalConfig

    torch.manual_seed(0)
    model = VideoCLIP.from_preset("tiny").eval()
    chosen, answers = ex.qa_choices(model, synthetic_world / "msrvtt_qa")
    assert chosen.shape == answers.shape and set(np.unique(chosen)) <= set(range(5))
    result = evaluate_task(model, "msrvtt_qa", synthetic_world / "msrvtt_qa", EvalConfig(progress=False))
    assert 100 * np.mean(chosen == answers) == pytest.approx(result.metrics["accuracy"])
