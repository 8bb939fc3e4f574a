"""Chapter 02's checkers (vclip.exercises.model_and_loss): a right answer, computed with the package, passes;
a wrong one fails with a message naming both numbers."""

import copy
import math

import torch

from vclip.exercises.model_and_loss import (
    check_first_adam_step,
    check_margin_loss,
    check_temperature_loss,
    margin_loss,
)
from vclip.loss import contrastive_loss


def _shown(value: float) -> str:
    return f"{value:.4g}"


def test_margin_loss_is_the_package_loss_of_a_scaled_identity():
    for batch, margin in ((64, 5.0), (8, 0.0), (16, -1.5)):
        sim = torch.eye(batch, dtype=torch.float64) * margin
        right = torch.arange(batch)
        expected = float(-sim.log_softmax(1)[right, right].mean() - sim.log_softmax(0)[right, right].mean())
        assert math.isclose(margin_loss(batch, margin), expected, rel_tol=1e-12)


def test_margin_loss_right_and_wrong():
    worked = 2 * math.log(1 + 63 * math.exp(-5))  # the worked solution
    assert check_margin_loss(worked, batch_size=64, margin=5.0).passed
    expected = margin_loss(64, 5.0)
    wrong = check_margin_loss(2 * math.log(64), batch_size=64, margin=5.0)  # the equal-scores answer
    assert not wrong.passed
    assert _shown(2 * math.log(64)) in wrong.message and _shown(expected) in wrong.message
    assert "no answer yet" in check_margin_loss(None).message


def test_temperature_loss_right_and_wrong():
    torch.manual_seed(0)
    video, text = torch.randn(16, 32), torch.randn(16, 32)
    right = float(contrastive_loss(video / 0.1 ** 0.5, text / 0.1 ** 0.5))  # the worked solution, in float32
    assert check_temperature_loss(right, video, text, temperature=0.1).passed
    untempered = float(contrastive_loss(video, text))
    wrong = check_temperature_loss(untempered, video, text, temperature=0.1)
    expected = float(contrastive_loss(video.double(), text.double(), temperature=0.1))
    assert not wrong.passed and _shown(untempered) in wrong.message and _shown(expected) in wrong.message


def test_first_adam_step_moves_a_weight_by_the_learning_rate():
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 4)
    before = copy.deepcopy(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
    model(torch.randn(5, 8)).pow(2).sum().backward()
    optimizer.step()
    assert check_first_adam_step(1e-3, before, model).passed  # the worked solution: the learning rate
    wrong = check_first_adam_step(1e-2, before, model)
    assert not wrong.passed and "0.01" in wrong.message and "0.001" in wrong.message
