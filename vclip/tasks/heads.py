"""The fine-tuning losses and heads of the five downstream recipes, beside the zero-shot tasks.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (fine-tuned results of every task). Reference:
fairseq ``examples/MMPT``, ``mmpt/losses/nce.py`` (``T2VContraLoss``, ``V2TContraLoss``),
``mmpt/losses/loss.py`` (``CrossEntropy``, ``BCE``), ``mmpt/models/mmfusion.py``
(``MMFusionSeparateActionSegmentation``, ``MMFusionSeparateActionLocalization``) and
``mmpt/models/transformermodel.py`` (``MMBertForTokenClassification``: a new Linear over the video
tower's per-second states). With ``v`` the pooled video vectors, ``t`` the pooled text vectors of a
batch of B pairs, ``h_s`` the video tower's last-layer state of second s (``[CLS]`` masked out of
attention) and ``u_k`` the pooled text of step k:

* YouCook2, MSR-VTT retrieval -- :func:`text_to_video_loss`, text-to-video InfoNCE, no temperature::

      L = -1/B sum_i log( exp(t_i . v_i) / sum_j exp(t_i . v_j) )

* MSR-VTT multiple choice -- :func:`video_to_text_loss`, the same with the roles swapped (each video
  picks its caption among the batch's: the test asks a video to pick among 5 sentences)::

      L = -1/B sum_i log( exp(v_i . t_i) / sum_j exp(v_i . t_j) )

* COIN segmentation -- :class:`SegmentationHead` ``z_s = W h_s + b`` (C = labels + 1 outputs, class
  0 = background) and :func:`segmentation_loss`, cross-entropy over the valid seconds (padding
  targets are -100 and ignored)::

      L = -1/S sum_s log softmax(z_s)[y_s]

* CrossTask localisation -- :func:`localisation_scores` ``z_sk = h_s . u_k`` (no new weights: the
  zero-shot scorer, trained) and :func:`localisation_loss`, binary cross-entropy of every (second,
  step) cell against the 0/1 annotation, over the valid seconds::

      L = -1/(S K) sum_{s,k} [ y_sk log sigma(z_sk) + (1 - y_sk) log(1 - sigma(z_sk)) ]

A fine-tuned COIN model is evaluated by its task's hook (:class:`vclip.tasks.coin.CoinFinetuning`):
the zero-shot task's windows and frame accuracy, each second labelled by the head's argmax.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vclip.tasks.common import IGNORE_INDEX

HEAD_WEIGHTS = "head.safetensors"
HEAD_CONFIG = "head.json"


def _check_pairs(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.dim() != 2 or a.shape != b.shape or a.shape[0] < 1:
        raise ValueError(f"expected two (B, H) tensors with B >= 1, got {tuple(a.shape)} and {tuple(b.shape)}")


def text_to_video_loss(pooled_text: torch.Tensor, pooled_video: torch.Tensor) -> torch.Tensor:
    """Reference ``T2VContraLoss``: cross-entropy over the rows of ``text @ video.T``, positives on the
    diagonal (B, H) x (B, H) -> scalar (mean over the B texts)."""
    _check_pairs(pooled_text, pooled_video)
    logits = (pooled_text @ pooled_video.T).float()
    return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))


def video_to_text_loss(pooled_video: torch.Tensor, pooled_text: torch.Tensor) -> torch.Tensor:
    """Reference ``V2TContraLoss``: cross-entropy over the rows of ``video @ text.T`` (mean over videos)."""
    _check_pairs(pooled_video, pooled_text)
    logits = (pooled_video @ pooled_text.T).float()
    return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))


class SegmentationHead(nn.Module):
    """COIN's classifier over the video tower's per-second states: Linear(H -> num_labels + 1).

    Output 0 is background, output i the step label id i (``COIN.json`` ids). Initialised as BERT's
    new layers are (weights N(0, 0.02), bias 0), as the reference's ``MMBertForTokenClassification``.
    """

    def __init__(self, hidden_size: int, num_labels: int, initializer_range: float = 0.02):
        super().__init__()
        if num_labels < 1:
            raise ValueError(f"a segmentation head needs at least 1 step label, got {num_labels}")
        self.hidden_size, self.num_labels = int(hidden_size), int(num_labels)
        self.classifier = nn.Linear(hidden_size, num_labels + 1)
        nn.init.normal_(self.classifier.weight, mean=0.0, std=initializer_range)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, states: torch.Tensor) -> torch.Tensor:  # (..., H) -> (..., num_labels + 1)
        return self.classifier(states)

    def save(self, directory: str | Path) -> None:
        """``head.safetensors`` + ``head.json`` beside a checkpoint's ``model.safetensors``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, directory / HEAD_WEIGHTS)
        (directory / HEAD_CONFIG).write_text(json.dumps(
            {"kind": "coin_segmentation", "hidden_size": self.hidden_size, "num_labels": self.num_labels}, indent=1)
            + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> SegmentationHead:
        """The head saved by :meth:`save` in ``directory`` (strict), in eval mode."""
        from vclip.errors import CheckpointError
        from vclip.rundir import one_line, read_json_file
        from vclip.weights import load_weights_file

        directory = Path(directory)
        for name in (HEAD_CONFIG, HEAD_WEIGHTS):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory} has no COIN segmentation head ({name} is missing)")
        config = read_json_file(directory / HEAD_CONFIG)  # JSON and safetensors only: nothing here runs code
        sizes = [config.get(k) for k in ("hidden_size", "num_labels")]
        if config.get("kind") != "coin_segmentation" or not all(isinstance(n, int) and n >= 1 for n in sizes):
            raise CheckpointError(f"{directory / HEAD_CONFIG}: expected a coin_segmentation head with positive "
                                  f"hidden_size and num_labels, found {one_line(config, 120)}")
        head = cls(*sizes)
        try:
            head.load_state_dict(load_weights_file(directory / HEAD_WEIGHTS), strict=True)
        except RuntimeError as error:
            raise CheckpointError(f"{directory / HEAD_WEIGHTS}: does not fit {directory / HEAD_CONFIG} "
                                  f"({one_line(error, 160)})") from None
        return head.eval()



def segmentation_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Reference COIN ``CrossEntropy``: (N, T, C) logits vs (N, T) label ids, -100 ignored; the mean
    over the counted seconds."""
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"logits must be (N, T, C) and targets (N, T), got {tuple(logits.shape)} and "
                         f"{tuple(targets.shape)}")
    if not bool((targets != IGNORE_INDEX).any()):
        raise ValueError("segmentation_loss: every target is ignored (-100); nothing to learn from")
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten().long(), ignore_index=IGNORE_INDEX)


def localisation_scores(states: torch.Tensor, step_texts: torch.Tensor) -> torch.Tensor:
    """CrossTask's per-second step scores ``states @ texts.T``: (N, T, H) x (K, H) -> (N, T, K)."""
    if states.dim() != 3 or step_texts.dim() != 2 or states.shape[-1] != step_texts.shape[-1]:
        raise ValueError(f"states must be (N, T, H) and step_texts (K, H), got {tuple(states.shape)} and "
                         f"{tuple(step_texts.shape)}")
    return states @ step_texts.T


def localisation_loss(scores: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Reference CrossTask ``BCE``: ``BCEWithLogits`` of (N, T, K) scores vs 0/1 targets over the
    seconds where ``mask`` (N, T) is True (the reference keeps the valid video tokens only); the mean
    over the counted (second, step) cells."""
    if scores.dim() != 3 or targets.shape != scores.shape or mask.shape != scores.shape[:2]:
        raise ValueError(f"scores and targets must be (N, T, K) and mask (N, T), got {tuple(scores.shape)}, "
                         f"{tuple(targets.shape)} and {tuple(mask.shape)}")
    mask = mask.bool()
    if not bool(mask.any()):
        raise ValueError("localisation_loss: the mask keeps no second")
    return F.binary_cross_entropy_with_logits(scores[mask].float(), targets[mask].float())


__all__ = ["IGNORE_INDEX", "SegmentationHead", "localisation_loss", "localisation_scores",
           "segmentation_loss", "text_to_video_loss", "video_to_text_loss"]
