"""``python -m vclip.evaluate``: zero-shot evaluation of a VideoCLIP checkpoint on the paper's six tasks.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (zero-shot transfer) and its result tables. Reference:
fairseq ``examples/MMPT``, ``mmpt_cli/predict.py`` run on ``projects/retri/videoclip/test_*_zs*.yaml``;
the tasks themselves (one registered class each) are in :mod:`vclip.tasks`, the metrics in :mod:`vclip.metrics`.

Usage::

    python -m vclip.evaluate --task youcook2 --checkpoint runs/pretrain --data data/youcook2
    python -m vclip.evaluate --task all --checkpoint checkpoint_best.pt --data data/generated/synthetic
    python -m vclip.evaluate --task all --untrained tiny --data data/generated/synthetic --json out.json

``--checkpoint`` takes a native checkpoint folder, a run directory (its latest checkpoint) or the
reference's ``checkpoint_best.pt``; ``--untrained PRESET`` evaluates a randomly initialised model
instead (a baseline). The table shows our number, chance and (on synthetic folders) the oracle, the
paper's number for the same task and setting (measured on the REAL datasets: on synthetic data it is
a different dataset and only a reference point), N evaluated, and items skipped for missing features.
The program exits with status 1 when a task could evaluate nothing (the report says what is missing).

The program reads its command line, resolves the run once (:func:`vclip.training.resolve.resolve_run`:
a pre-trained checkpoint, an untrained preset or a fine-tuning run, with the model it started from),
scores each task folder (:meth:`~vclip.training.resolve.ResolvedRun.evaluate`) and prints the table
(:func:`vclip.tasks.report.format_table`).

The command line is :class:`EvaluateCommand` read by ``tyro`` (``vclip.config.parse_typed_command``, the
same as the pre-training program's): ``--help`` lists every flag with its default, the evaluation
settings are the fields of :class:`vclip.tasks.EvalConfig` (``--batch-size``, ``--didemo-pooling``...),
``--print-config`` prints the resolved settings as JSON, and a bad value is one line and status 2.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import torch
import tyro

from vclip.cli import program
from vclip.config import parse_typed_command
from vclip.errors import ConfigError, DataFormatError
from vclip.logs import setup_logging
from vclip.tasks import TASKS, EvalConfig, TaskResult
from vclip.tasks.report import format_table, result_notes
from vclip.training.resolve import resolve_run

logger = logging.getLogger(__name__)


_TASK_HELP = (f"one registered task ({', '.join(TASKS)}, and any registered later), or 'all' (then --data is "
              "a world root holding one folder per task)")


@dataclass
class EvaluateCommand:
    """Zero-shot evaluation of a VideoCLIP checkpoint (or a fine-tuning run) on the paper's tasks.

    Give exactly one of --checkpoint and --untrained. The evaluation settings below are the
    reference's by default (DEVIATIONS.md, "Evaluation").
    """

    task: Annotated[str, tyro.conf.arg(help=_TASK_HELP, metavar="TASK")]
    data: str  # evaluation folder (or the world root with --task all)
    checkpoint: str | None = None  # checkpoint folder (a Hugging Face Hub model folder), run directory, fine-tuning run, reference checkpoint_best.pt, or a Hub name org/name
    init: str | None = None  # with a fine-tuning run: the model it started from, for the zero-shot (init) column (default: the init_checkpoint its finetune.json names)
    untrained: str | None = None  # evaluate a randomly initialised model of this preset (tiny, minilm, paper): a baseline
    json: str | None = None  # also write every result (and baseline) to this JSON file
    no_baselines: Annotated[bool, tyro.conf.FlagCreatePairsOff] = False  # skip chance and oracle
    device: str = "auto"  # cpu, cuda or cuda:N (auto: cuda when available, else cpu)
    seed: int = 0  # initialisation seed of --untrained
    print_config: Annotated[bool, tyro.conf.FlagCreatePairsOff] = False  # print the resolved settings as JSON and exit
    verbose: Annotated[bool, tyro.conf.FlagCreatePairsOff] = False  # also show the libraries' log lines (faiss, transformers, ...)
    evaluation: Annotated[EvalConfig, tyro.conf.arg(name="")] = field(default_factory=EvalConfig)


def parse_args(argv=None) -> EvaluateCommand:
    """The command line as an :class:`EvaluateCommand` (``vclip.config.parse_typed_command``)."""
    command = parse_typed_command(EvaluateCommand, argv, prog="python -m vclip.evaluate")
    if command.task != "all" and command.task not in TASKS:  # checked now: tasks may be registered after import
        print(f"python -m vclip.evaluate: error: --task {command.task!r}: expected one of {', '.join([*TASKS, 'all'])}",
              file=sys.stderr)
        raise SystemExit(2)  # a usage error, as a bad choice
    if (command.checkpoint is None) == (command.untrained is None):
        raise ConfigError("give exactly one of --checkpoint PATH or --untrained PRESET")
    if command.device == "auto":
        command.device = "cuda" if torch.cuda.is_available() else "cpu"
    return command


@program
def main(argv=None) -> int:
    """``python -m vclip.evaluate``: 0 when every task evaluated, 1 when one could not, 2 on a user's mistake
    (one line, :mod:`vclip.cli`: bad arguments, a missing or unusable checkpoint)."""
    args = parse_args(argv)
    config = args.evaluation
    if args.print_config:
        print(json.dumps(dataclasses.asdict(args), indent=2))
        return 0
    setup_logging(args.verbose, fmt="%(levelname)s %(name)s: %(message)s")
    data = Path(args.data)
    if not data.is_dir():
        raise ConfigError(f"--data {data} is not a folder")
    run = resolve_run(args.checkpoint, args.untrained, args.init, args.seed, args.device)
    tuned = run.summary
    tasks = TASKS if args.task == "all" else (args.task,)
    results: dict[str, dict[str, TaskResult]] = {}
    failed: list[str] = []
    for task in tasks:
        folder = data / task if args.task == "all" else data
        if not folder.is_dir():
            print(f"{task}: no folder {folder}; skipped", file=sys.stderr)
            continue
        try:
            results[task] = run.evaluate(task, folder, config, baselines=not args.no_baselines)
        except DataFormatError as error:  # unusable data: say which file and field, go on with the others
            print(f"{task}: error: {error}", file=sys.stderr)
            failed.append(task)
    if not results:
        print(f"error: nothing evaluated under {data}" + (f" (failed: {', '.join(failed)})" if failed else
                                                          " (no task folder found)"), file=sys.stderr)
        return 1
    print(format_table(results, model_label=run.label))
    print("paper: VideoCLIP's zero-shot numbers on the real datasets (a different dataset from a synthetic world);"
          " '(unconfirmed)' = recalled, not confirmed in a source")
    if tuned:
        print(f"fine-tuned on {tuned['task']} from {tuned['init_checkpoint']} ({tuned['config']} recipe); "
              f"{tuned['selection_note']}. 'paper fine-tuned': the paper's fine-tuned rows "
              "(paperswithcode's VideoCLIP page; MSR-VTT QA recalled)")
    for line in result_notes(results):
        print(line)
    if args.json:
        source = {"checkpoint": args.checkpoint, "untrained": args.untrained, "data": str(data),
                  "config": dataclasses.asdict(config)}
        payload = {"source": source,
                   "results": {task: {k: r.to_dict() for k, r in by.items()} for task, by in results.items()}}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=1))
    return 0 if not failed and all(by["model"].ok for by in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
