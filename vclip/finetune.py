"""``python -m vclip.finetune``: fine-tune a pre-trained VideoCLIP on one downstream task, as the reference's recipes.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4. Reference: fairseq ``examples/MMPT``,
``projects/retri/videoclip/*_videoclip.yaml``. The program reads its command line, calls the library
(:mod:`vclip.training.finetuning`: the recipes, the task hooks, the shared training loop), prints the
result and returns an exit code.

Usage::

    python -m vclip.finetune --task youcook2 --init runs/pretrain --data data/generated/synthetic/youcook2 --output runs/ft
    python -m vclip.finetune --task coin --init checkpoint_best.pt --data data/coin --output runs/coin --config paper
    python -m vclip.finetune --task coin ... --output runs/coin --config paper --resume   # continue from its LATEST
    torchrun --nproc-per-node 2 -m vclip.finetune --task msrvtt --init RUN --data DIR --output RUN2 --config paper
    python -m vclip.finetune --task coin --config paper --print-config      # the resolved recipe, as JSON
    python -m vclip.finetune --task coin --config paper --help              # every setting, that recipe's defaults

The command line is :class:`FinetuneCommand`, built by tyro from
:class:`~vclip.training.finetuning.FinetuneConfig` (help from the fields' comments) the way
:mod:`vclip.config` builds ``vclip.pretrain``'s: defaults, then the recipe file that ``--config``
and ``--task`` name (``vclip/configs/finetune/<config>.json``), then the command line; a bad value is
a one-line :class:`vclip.config.ConfigError`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Annotated

import tyro

from vclip import distributed as vdist
from vclip.cli import program
from vclip.config import deferred_checks, early_options, parse_typed_command
from vclip.errors import ConfigError
from vclip.logs import setup_logging, verbose_requested
from vclip.training.finetuned import finetune_tasks, format_summary
from vclip.training.finetuning import FINETUNE_CONFIG_DIR, FinetuneConfig, finetune, format_data_line, recipe


@dataclass
class FinetuneCommand:
    """Fine-tune a pre-trained VideoCLIP on one downstream task, as the reference's recipes (torchrun for several GPUs).

    Values come from the defaults, then the recipe that --config and --task name (teaching or paper),
    then the command line; the defaults shown here are that recipe's (try --task coin --config paper --help).
    """

    print_config: bool = False  # print the resolved configuration as JSON and exit
    verbose: bool = False  # also show the libraries' log lines (faiss, transformers, ...)
    settings: Annotated[FinetuneConfig, tyro.conf.arg(name="")] = field(
        default_factory=lambda: recipe("youcook2"))


def parse_command_line(argv: list[str] | None = None, prog: str = "python -m vclip.finetune") -> FinetuneCommand:
    """Resolve defaults < the recipe of ``--config``/``--task`` < command line (vclip.config's way)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = early_options(argv, config="teaching", task="")
    recipes = sorted(p.stem for p in FINETUNE_CONFIG_DIR.glob("*.json"))
    if chosen["config"] not in recipes:  # tyro would list the choices in a box; say it in one line
        raise ConfigError(f"--config must be one of {', '.join(recipes)}, got {chosen['config']!r}")
    tasks = finetune_tasks()
    if chosen["task"] and chosen["task"] not in tasks:
        raise ConfigError(f"--task must be one of {', '.join(tasks)}, got {chosen['task']!r}")
    with deferred_checks():  # tyro would box a value error; the resolved values are checked below
        base = recipe(chosen["task"] or tasks[0], chosen["config"])
        base.task = tyro.MISSING  # --task is required: the recipe and the loss follow from it
    command = parse_typed_command(FinetuneCommand, argv, prog, default=FinetuneCommand(settings=base))
    command.settings = FinetuneConfig(**dataclasses.asdict(command.settings))  # the checks, in one line
    return command


def config_from_args(argv=None) -> FinetuneConfig:
    """The :class:`FinetuneConfig` a command line asks for (``vclip.finetune``'s parsing, without running)."""
    return parse_command_line(argv).settings


@program
def main(argv=None) -> int:
    """``python -m vclip.finetune``: exit 0 when fine-tuned, 2 on a user's mistake (one line, :mod:`vclip.cli`)."""
    setup_logging(verbose_requested(sys.argv[1:] if argv is None else argv))
    try:
        command = parse_command_line(argv)
        config = command.settings
        if command.print_config:
            print(json.dumps(dataclasses.asdict(config), indent=2))
            return 0
        missing = [f"--{name}" for name in ("init", "data", "output") if not getattr(config, name)]
        if missing:
            raise ConfigError(f"{', '.join(missing)} required (the pre-trained model, the task folder, the new run directory)")
        result = finetune(config)
    finally:
        vdist.cleanup()
    summary = result.summary
    if os.environ.get("RANK", "0") == "0" and summary:
        print(f"run: {result.run_dir}  task: {summary['task']}  recipe: {summary['config']}  "
              f"updates: {summary['updates']}  selected epoch: {summary['selected_epoch']} ({summary['selection_note']})")
        print(format_data_line(summary))
        print(format_summary(summary))
        print("paper: VideoCLIP's numbers on the real datasets (a different dataset from a synthetic world)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
