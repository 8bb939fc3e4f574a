"""``python -m vclip.hub``: write the Hugging Face Hub model folder of a run, a checkpoint, or the release (export, convert).

Paper: VideoCLIP (Xu et al., EMNLP 2021). Reference: fairseq ``examples/MMPT``, whose released
pre-trained model is ``runs/retri/videoclip/checkpoint_best.pt`` (:mod:`vclip.checkpoint`).

A vclip checkpoint folder *is* a Hub model folder (``huggingface_hub.PyTorchModelHubMixin`` on
:class:`vclip.model.VideoCLIP`): ``config.json`` (the :class:`~vclip.model_config.VideoCLIPConfig`),
``model.safetensors`` and ``README.md``, the model card filled in here with the run's evaluation
table, the paper's citation and the licence. A fine-tuned COIN model adds its head
(``head.safetensors``, ``head.json``, :class:`vclip.tasks.heads.SegmentationHead`); an exported
fine-tuning run adds its ``finetune.json`` summary, so that ``vclip.evaluate --checkpoint FOLDER``
reports it as fine-tuned.

One command makes a self-contained folder to share (``push_to_hub`` or ``hf upload``; docs/model.md)::

    python -m vclip.hub runs/teaching --out hub/vclip-teaching          # a pre-training run (BEST, else LATEST)
    python -m vclip.hub runs/ft-coin --out hub/vclip-coin               # a fine-tuning run (model, head, summary)
    python -m vclip.hub checkpoint_best.pt --out hub/videoclip-release  # the reference's released checkpoint

The export is :func:`vclip.training.export.export`; Hub names and the card's template are
:mod:`vclip.huggingface`. Loading (:func:`vclip.checkpoint.load_model`, ``--checkpoint``, ``--init``) takes such a folder or a
Hub name ``org/name``. With ``HF_HUB_OFFLINE=1`` (the kit's tests, a machine without network) a Hub
name that is not in the local cache is one line saying how to pass a local folder instead.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Annotated

import tyro

from vclip.cli import program
from vclip.errors import CheckpointError
from vclip.rundir import one_line
from vclip.training.export import export


@dataclass
class HubCommand:
    """Write the Hugging Face Hub model folder of a vclip run, a checkpoint folder, or the reference's released
    checkpoint_best.pt (converted): config.json, model.safetensors, README.md (the model card with the run's
    evaluation table, the paper's citation and the licence), and a fine-tuned model's head and summary."""

    source: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="SOURCE")]  # a pre-training run (its BEST checkpoint, else LATEST), a fine-tuning run, a checkpoint folder, or checkpoint_best.pt
    out: Annotated[str, tyro.conf.arg(metavar="FOLDER")]  # the folder to write (push it with `hf upload ORG/NAME OUT` or VideoCLIP.push_to_hub)
    overwrite: bool = False  # replace a non-empty --out
    verbose: bool = False  # also show the libraries' log lines


@program
def main(argv: list[str] | None = None) -> int:
    """``python -m vclip.hub SOURCE --out FOLDER``: 0 when written, 2 on bad input (one line)."""
    from vclip.config import parse_typed_command
    from vclip.errors import ConfigError
    from vclip.logs import setup_logging, verbose_requested

    argv = list(sys.argv[1:] if argv is None else argv)
    setup_logging(verbose_requested(argv))
    try:
        command = parse_typed_command(HubCommand, argv, prog="python -m vclip.hub")
        exported = export(command.source, command.out, command.overwrite)
    except (ConfigError, CheckpointError, FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"error: {one_line(error, 400)}", file=sys.stderr)
        return 2
    files = ", ".join(sorted(p.name for p in exported.folder.iterdir()))
    print(f"wrote the {exported.kind} model of {exported.source} to {exported.folder}: {files}")
    print(f"load it with VideoCLIP.from_pretrained({str(exported.folder)!r}) or --checkpoint {exported.folder}; "
          "share it with hf upload ORG/NAME " + str(exported.folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
