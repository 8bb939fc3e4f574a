"""The pre-training program: retrieval-augmented contrastive training on overlapped clips.

Paper: VideoCLIP sections 3.3-3.4 (overlapped clips, retrieval-augmented training) and 4.1
(pre-training on HowTo100M: 8 GPUs x 512 pairs, Adam, lr 5e-5, 1000 warm-up updates, 25 epochs).

Reference (fairseq ``examples/MMPT``):
``projects/retri/videoclip/how2.yaml`` (hyper-parameters), ``mmpt/tasks/retritask.py`` (the retrieval
pass before each epoch, the group -> 512-pair reshape), ``mmpt/losses/nce.py::MMContraLoss`` (the
loss), fairseq's ``adam`` optimiser and ``polynomial_decay`` scheduler, and its checkpointing
(``checkpoint_best`` by lowest validation loss on How2 val groups).

Programs::

    python -m vclip.pretrain --data DIR --output runs/tiny                 # the teaching recipe (CPU)
    torchrun --nproc-per-node 8 -m vclip.pretrain --config paper --data DIR --output RUN
    python -m vclip.pretrain --help                                         # every setting, by section

The configuration (sections, recipes, command line) is ``vclip.config``; the parts of the training
process (epoch plan, update, validation, checkpoints, the loop) are ``vclip.training``.

Python API (used by the notebooks; this module is only the program around it)::

    from vclip.config import parse_command_line
    from vclip.training.pretraining import pretrain
    result = pretrain(load_recipe("teaching").updated(data=..., output=..., steps=200))
    result.run_dir, result.history

Run directory (:mod:`vclip.rundir`, ``docs/design.md``)::

    <run>/config.json, <run>/metrics.jsonl, <run>/.lock (while running),
    <run>/checkpoints/step_XXXXXX/{model.safetensors, config.json, trainer_state.pt}, <run>/checkpoints/LATEST

A run locks its directory before writing anything; ``--resume`` refuses settings that differ from the
saved ones except those in :data:`vclip.rundir.RESUMABLE_CHANGES` (``docs/reliability.md``).

Everything random derives from ``--seed`` through ``numpy.random.SeedSequence`` keys (epoch, rank,
group position, step), so an interrupted run resumed from its last checkpoint equals the uninterrupted
run: the checkpoint holds the model, optimiser, scheduler, gradient scaler, the epoch's groups and the
position in them.
"""

from __future__ import annotations

import json
import logging
import os
import sys

from vclip import distributed as vdist
from vclip.cli import program
from vclip.config import parse_command_line
from vclip.logs import setup_logging, verbose_requested
from vclip.training.trainer import Trainer

log = logging.getLogger(__name__)


@program
def main(argv=None) -> int:
    """``python -m vclip.pretrain``: exit 0 when trained, 2 on a user's mistake (one line, :mod:`vclip.cli`)."""
    from vclip.bert import resolve_folder

    setup_logging(verbose_requested(sys.argv[1:] if argv is None else argv))
    is_main = os.environ.get("RANK", "0") == "0"
    try:  # everything a user can get wrong is found before any training, or refused by the run directory
        command = parse_command_line(argv)
        config = command.settings
        if command.print_config:
            print(json.dumps(config.to_dict(), indent=2))
            return 0
        if is_main:
            sections = "\n".join(f"  {name}: {json.dumps(values)}" for name, values in config.to_dict().items())
            log.info("configuration (recipe %s, then the command line):\n%s", command.config, sections)
        if config.model.init_from:
            resolve_folder(config.model.init_from)  # an unreachable hub name fails now, before the data is read
        result = Trainer(config, vdist.init_distributed(config.run.device)).fit()
    finally:
        vdist.cleanup()
    last = [r for r in result.history if r.get("kind") == "train"][-1:]
    val = [r for r in result.history if r.get("kind") == "val"][-1:]
    if is_main:
        print(f"run: {result.run_dir}  steps: {result.final_step}", file=sys.stdout)
        if last:
            print(f"last train loss {last[0]['loss']:.4f}", file=sys.stdout)
        if val:
            print(f"last val loss {val[0]['val_loss']:.4f}", file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
