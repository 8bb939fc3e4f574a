"""TensorBoard event files of a run: every ``metrics.jsonl`` record, also as scalars (optional).

Pre-training (``--run.tensorboard``) and fine-tuning (``--tensorboard``) runs write their records
through one place, :meth:`vclip.rundir.RunDir.append_metrics`; with the option on, the run directory
also holds a :class:`TensorBoardSink` that turns each record into scalars of
``<run>/tensorboard/`` (``tensorboard --logdir runs``). Nothing is written elsewhere, so the event
file carries exactly what metrics.jsonl carries:

* ``train/loss``, ``train/loss_video_to_text``, ``train/loss_text_to_video`` (the two directions of
  the symmetric InfoNCE, paper section 3.2), ``train/lr``, ``train/grad_norm``, ``train/pairs_per_s``;
* ``val/val_loss``; ``eval/<task>/<metric>`` (zero-shot evaluations during pre-training);
* ``epoch_plan/retrieval/<statistic>`` (the retrieval pass's group statistics, paper section 3.4);
* fine-tuning: ``train/*`` and ``epoch/train_loss``, ``epoch/val_loss``, ``epoch/test/<metric>``.

The tag of a value is the record's ``kind`` (and ``task``), then its key path; ``metrics`` levels
are left out of the path; the x axis is the record's ``step``. ``tensorboard`` is an optional
dependency (``pip install -e '.[tensorboard]'``); asking for it without the package is a one-line
:class:`vclip.errors.ConfigError`.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

EVENTS_DIR = "tensorboard"
INSTALL_HINT = "pip install -e '.[tensorboard]' (or pip install tensorboard)"


def require_tensorboard(option: str) -> None:
    """Raise a one-line ConfigError when ``option`` is on but the ``tensorboard`` package is missing."""
    from vclip.errors import ConfigError

    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(f"{option} needs the tensorboard package, which is not installed: {INSTALL_HINT}")


def scalars(record: dict) -> list[tuple[str, float]]:
    """(tag, value) of every finite number in ``record`` (module docstring); ``step`` and ``epoch`` are axes."""
    prefix = str(record.get("kind", "record"))
    if isinstance(record.get("task"), str):
        prefix += "/" + record["task"]
    out: list[tuple[str, float]] = []

    def walk(values: dict, path: str) -> None:
        for key, value in values.items():
            if path == prefix and key in ("kind", "task", "step", "epoch"):
                continue
            tag = path if key == "metrics" else f"{path}/{key}"
            if isinstance(value, dict):
                walk(value, tag)
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                out.append((tag, float(value)))

    walk(record, prefix)
    return out


class TensorBoardSink:
    """Writes each metrics record to ``<run>/tensorboard`` (a ``torch.utils.tensorboard.SummaryWriter``)."""

    def __init__(self, run_dir: str | Path, purge_step: int | None = None):
        require_tensorboard("tensorboard logging")
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(run_dir) / EVENTS_DIR
        # purge_step: a resumed run drops the events logged after its checkpoint (they are logged again)
        self.writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge_step)

    def write(self, record: dict) -> None:
        step = int(record.get("step", 0))
        for tag, value in scalars(record):
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


__all__ = ["EVENTS_DIR", "TensorBoardSink", "require_tensorboard", "scalars"]
