"""A run to evaluate, resolved once: a pre-trained checkpoint, an untrained preset, or a fine-tuning run.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (zero-shot and fine-tuned evaluation). Reference:
fairseq ``examples/MMPT`` ``mmpt_cli/predict.py`` (one checkpoint, one task's test split).

:func:`resolve_run` asks once whether a path is a fine-tuning run (its ``finetune.json``) and loads
what its evaluation needs: the model (and a COIN model's head), and for a fine-tuning run the model it
started from, whose zero-shot scores stand beside the fine-tuned ones. :meth:`ResolvedRun.evaluate`
scores one task folder; ``python -m vclip.evaluate`` prints the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vclip.errors import ConfigError
from vclip.tasks import EvalConfig, TaskResult, evaluate_with_baselines


def load_for_evaluation(checkpoint: str | None, untrained: str | None, seed: int = 0, device: str = "cpu"):
    """The model to evaluate: ``load_model(checkpoint)`` or ``VideoCLIP.from_preset(untrained)`` (seeded)."""
    if (checkpoint is None) == (untrained is None):
        raise ConfigError("give exactly one of --checkpoint PATH or --untrained PRESET")
    try:
        device = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"--device: expected cpu, cuda or cuda:N, got {device!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA device is available here (use cpu)")
    if checkpoint is not None:
        from vclip.checkpoint import load_model

        model = load_model(checkpoint)
    else:
        from vclip.model import VideoCLIP
        from vclip.model_config import PRESETS

        if untrained not in PRESETS:
            raise ConfigError(f"--untrained: unknown preset {untrained!r}; expected one of {', '.join(PRESETS)}")
        torch.manual_seed(seed)
        model = VideoCLIP.from_preset(untrained)
    return model.to(device).eval()


@dataclass
class ResolvedRun:
    """What one evaluation needs of a run: the model to score, and for a fine-tuning run its head, its
    ``finetune.json`` summary and the model it started from (``init``)."""

    model: torch.nn.Module
    source: str  # what was asked for: the checkpoint path, or "untrained <preset>"
    head: torch.nn.Module | None = None
    summary: dict | None = None  # a fine-tuning run's finetune.json; None for a pre-trained model
    init: torch.nn.Module | None = None  # a fine-tuning run's starting model (the zero-shot column)

    @property
    def finetuned_task(self) -> str | None:
        return self.summary["task"] if self.summary else None

    @property
    def label(self) -> str:
        """The name of the model's column in the results table."""
        if self.summary:
            return f"fine-tuned ({self.summary['task']})"
        return self.source if self.source.startswith("untrained ") else "ours"

    def evaluate(self, task: str, folder, config: EvalConfig | None = None,
                 baselines: bool = True) -> dict[str, TaskResult]:
        """scorer -> result on one task folder: "model" (and "chance", "oracle"); on a fine-tuning run's own
        task, "model" is the fine-tuned model (through its head) and "zero-shot" the model it started from."""
        from vclip.training.finetuned import evaluate_finetuned

        if task != self.finetuned_task:
            return evaluate_with_baselines(self.model, task, folder, config, baselines=baselines)
        results = evaluate_with_baselines(self.init, task, folder, config, baselines=baselines)
        results["zero-shot"] = results.pop("model")
        results["model"] = evaluate_finetuned(self.model, self.head, task, folder, config)
        return results


def resolve_run(checkpoint: str | None = None, untrained: str | None = None, init: str | None = None,
                seed: int = 0, device: str = "cpu") -> ResolvedRun:
    """Load the run to evaluate (exactly one of ``checkpoint`` and ``untrained``), asking once whether
    ``checkpoint`` is a fine-tuning run. ``init`` overrides the starting model a fine-tuning run's
    ``finetune.json`` names (for a run moved since); for any other checkpoint it is a ConfigError."""
    from vclip.training.finetuned import SUMMARY_NAME, finetuned_run, load_finetuned

    if (checkpoint is None) == (untrained is None):
        raise ConfigError("give exactly one of --checkpoint PATH or --untrained PRESET")
    summary = finetuned_run(checkpoint) if checkpoint is not None else None
    if summary is None:
        if init:
            raise ConfigError(f"--init is for a fine-tuning run (a folder with {SUMMARY_NAME}); {checkpoint} is not one")
        model = load_for_evaluation(checkpoint, untrained, seed, device)
        return ResolvedRun(model, str(checkpoint) if checkpoint is not None else f"untrained {untrained}")
    model, head, _ = load_finetuned(checkpoint)
    init_path = init or summary["init_checkpoint"]
    if not init and not Path(init_path).exists():
        raise FileNotFoundError(
            f"{init_path}: no such checkpoint; this path is the init_checkpoint that {checkpoint}/{SUMMARY_NAME} "
            "names (the model the run was fine-tuned from, for the zero-shot column); the run or that model was "
            "moved: pass --init PATH to point at it")
    return ResolvedRun(model.to(device), str(checkpoint), head.to(device) if head is not None else None, summary,
                       load_for_evaluation(init_path, None, device=device))


__all__ = ["ResolvedRun", "load_for_evaluation", "resolve_run"]
