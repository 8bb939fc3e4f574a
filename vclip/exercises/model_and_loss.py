"""Checkers for chapter 02 (the two towers and the contrastive loss).

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 3.2 (the loss: a cross-entropy over a group's
video->text and text->video similarities); reference ``mmpt/losses/nce.py`` (``MMContraLoss``).
Every checker grades against the package's own result (:func:`vclip.loss.contrastive_loss`, one update
of :class:`vclip.pretrain.Trainer`), never against a recorded number.

* :func:`check_margin_loss` (02.1): the loss of a group whose positives score ``margin`` and whose
  negatives score 0, worked out on paper;
* :func:`check_temperature_loss` (02.2): the loss of a group of embeddings at a temperature;
* :func:`check_first_adam_step` (02.3): how far Adam's first update moves a weight.
"""

from __future__ import annotations

import torch

from vclip.exercises import Feedback, compare_number
from vclip.loss import contrastive_loss

__all__ = ["check_first_adam_step", "check_margin_loss", "check_temperature_loss", "margin_loss"]

TWO_DECIMALS = 0.005
"""An answer rounded to two decimals is still right."""


def margin_loss(batch_size: int, margin: float) -> float:
    """The package's loss of a group of ``batch_size`` pairs whose similarity matrix is ``margin`` times the
    identity (every positive scores ``margin``, every negative 0)."""
    if batch_size < 2:
        raise ValueError(f"margin_loss: a group needs at least 2 pairs, got batch_size={batch_size}")
    root = torch.eye(batch_size, dtype=torch.float64) * abs(float(margin)) ** 0.5
    return float(contrastive_loss(root, root if margin >= 0 else -root))  # similarities: margin x identity


def check_margin_loss(answer, batch_size: int = 64, margin: float = 5.0) -> Feedback:
    """02.1: the loss of a group where each positive scores ``margin`` and each negative 0."""
    expected = margin_loss(batch_size, margin)
    return compare_number("02.1", f"your loss for B = {batch_size} and a margin of {margin:g}", answer, expected,
                          "vclip.loss.contrastive_loss", tolerance=TWO_DECIMALS)


def check_temperature_loss(answer, z_video: torch.Tensor, z_text: torch.Tensor, temperature: float = 0.1) -> Feedback:
    """02.2: the loss of the pairs (``z_video[i]``, ``z_text[i]``) with similarities divided by ``temperature``."""
    expected = float(contrastive_loss(z_video.double(), z_text.double(), temperature=temperature))
    return compare_number("02.2", f"your loss at temperature {temperature:g}", answer, expected,
                          "vclip.loss.contrastive_loss", tolerance=max(TWO_DECIMALS, 1e-4 * abs(expected)))


def largest_change(before: torch.nn.Module, after: torch.nn.Module) -> float:
    """The largest absolute change of any weight between two copies of one model."""
    pairs = list(zip(before.parameters(), after.parameters(), strict=True))
    return max(float((a.detach() - b.detach()).abs().max()) for a, b in pairs)


def check_first_adam_step(answer, before: torch.nn.Module, after: torch.nn.Module) -> Feedback:
    """02.3: the largest change of any weight in Adam's first update (``before`` and ``after`` it).

    Graded to 1% of the measured change (Adam's first step is ``lr * g / (|g| + eps)``: a weight whose
    gradient is far above ``eps`` moves by the learning rate, whatever the gradient's size)."""
    expected = largest_change(before, after)
    return compare_number("02.3", "your largest weight change in the first update", answer, expected,
                          "the package's first update (Trainer.train_step)", tolerance=0.01 * expected)
