"""One pre-training run as a function: the library call behind ``python -m vclip.pretrain`` and the notebooks.

Paper: VideoCLIP sections 3.3-3.4 and 4.1. Reference (fairseq ``examples/MMPT``): fairseq's
``train.py`` main loop over ``projects/retri/videoclip/how2.yaml``; the loop itself is
:class:`vclip.training.trainer.Trainer`.

    from vclip.config import load_recipe
    from vclip.training.pretraining import pretrain
    result = pretrain(load_recipe("teaching").updated(data=..., output=..., steps=200))
    result.run_dir, result.history
"""

from __future__ import annotations

from vclip import distributed as vdist
from vclip.config import PretrainConfig
from vclip.training.trainer import PretrainResult, Trainer


def pretrain(config: PretrainConfig, data=None, model=None, lock=None) -> PretrainResult:
    """Run (or resume) one pre-training run; under torchrun each process calls this.

    ``data`` and ``model`` are optional ready objects (see :class:`Trainer`); by default the run reads
    ``config.data`` and builds ``config.preset``. ``lock``: the run directory's lock when the caller
    holds it already (:func:`vclip.notebooks.teaching_run`).
    """
    info = vdist.init_distributed(config.device)
    trainer = Trainer(config, info, data=data, model=model, lock=lock)
    return trainer.fit()


__all__ = ["pretrain"]
