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

The command line is :class:`EvaluateCommand` read by ``tyro`` (``vclip.config.parse_typed_command``, the
same as the pre-training program's): ``--help`` lists every flag with its default, the evaluation
settings are the fields of :class:`vclip.tasks.EvalConfig` (``--batch-size``, ``--didemo-pooling``...),
``--print-config`` prints the resolved settings as JSON, and a bad value is one line and status 2.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import torch
import tyro

from vclip.cli import program
from vclip.config import ConfigError, parse_typed_command
from vclip.data.formats import DataFormatError
from vclip.logs import setup_logging
from vclip.tasks import (
    TASKS,
    EvalConfig,
    TaskResult,
    evaluate_all,
    evaluate_baselines,
    evaluate_task,
    evaluate_with_baselines,
)

# The Python API (re-exported for notebooks and the training program): evaluate_task, evaluate_all,
# evaluate_baselines, evaluate_with_baselines, EvalConfig, TaskResult, format_table.
__all__ = ["EvalConfig", "TaskResult", "evaluate_all", "evaluate_baselines", "evaluate_task",
           "evaluate_with_baselines", "format_table", "main"]

logger = logging.getLogger(__name__)


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
        from vclip.model import PRESETS, VideoCLIP

        if untrained not in PRESETS:
            raise ConfigError(f"--untrained: unknown preset {untrained!r}; expected one of {', '.join(PRESETS)}")
        torch.manual_seed(seed)
        model = VideoCLIP.from_preset(untrained)
    return model.to(device).eval()


def _format(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def format_table(results: dict[str, dict[str, TaskResult]], model_label: str = "ours") -> str:
    """A plain-text table: task, metric, ours, chance, oracle, paper (real data), N, missing features.

    A fine-tuned model's results (a "zero-shot" entry beside "model": the model it started from) add
    the columns "zero-shot (init)" and "paper fine-tuned"."""
    tuned = any("zero-shot" in by_scorer for by_scorer in results.values())
    scorers = ("zero-shot", "chance", "oracle") if tuned else ("chance", "oracle")
    header = ["task", "metric", model_label, *(["zero-shot (init)"] if tuned else []), "chance", "oracle",
              "paper zero-shot (real data)" if tuned else "paper (real data)", *(["paper fine-tuned"] if tuned else []),
              "N", "missing features"]
    rows = [header]
    for task, by_scorer in results.items():
        model = by_scorer["model"]
        spec = TASKS[task]
        metrics = spec.metrics
        if not model.ok:
            rows.append([task, "-", "not evaluated", *["-"] * (len(header) - 5), str(model.n_evaluated),
                         str(model.n_missing_features)])
            continue
        for i, metric in enumerate(metrics):
            row = [task if i == 0 else "", metric, _format(model.metrics.get(metric))]
            for scorer in scorers:
                other = by_scorer.get(scorer)
                row.append(_format(other.metrics.get(metric)) if other is not None and other.ok else "-")
            number = spec.paper_number(metric)
            row.append(number.format() if number else "-")
            if tuned:
                number = spec.paper_number(metric, "fine-tuned")
                row.append(number.format() if number else "-")
            row += [str(model.n_evaluated), str(model.n_missing_features)] if i == 0 else ["", ""]
            rows.append(row)
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _notes(results: dict[str, dict[str, TaskResult]]) -> list[str]:
    lines = []
    for task, by_scorer in results.items():
        model = by_scorer["model"]
        if model.missing_report():
            lines.append(model.missing_report())
        if not model.ok:
            lines.append(f"{task}: nothing could be evaluated in {model.folder}")
        lines += [f"{task}: {note}" for note in model.notes]
        if "video_to_text" in model.details and model.ok:
            v2t = model.details["video_to_text"]
            lines.append(f"{task}: video->text R@1 {v2t['R@1']:.1f}, R@5 {v2t['R@5']:.1f}, R@10 {v2t['R@10']:.1f}, "
                         f"MedR {v2t['MedR']:.1f}")
        if "threshold" in model.details:
            lines.append(f"{task}: label threshold lambda = {model.details['threshold']:.4g} "
                         f"(largest off-diagonal label-label similarity)")
    return lines


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
    from vclip.training.finetuned import SUMMARY_NAME, evaluate_finetuned, finetuned_run, load_finetuned

    tuned = finetuned_run(args.checkpoint) if args.checkpoint else None
    if args.init and not tuned:
        raise ConfigError(f"--init is for a fine-tuning run (a folder with {SUMMARY_NAME}); {args.checkpoint} is not one")
    if tuned:  # a fine-tuning run: its task through its head, beside the model it started from
        model, head, _ = load_finetuned(args.checkpoint)
        model, head = model.to(args.device), head.to(args.device) if head is not None else None
        init_path = args.init or tuned["init_checkpoint"]
        if not args.init and not Path(init_path).exists():
            raise FileNotFoundError(
                f"{init_path}: no such checkpoint; this path is the init_checkpoint that {args.checkpoint}/{SUMMARY_NAME} "
                "names (the model the run was fine-tuned from, for the zero-shot column); the run or that model was "
                "moved: pass --init PATH to point at it"
            )
        init = load_for_evaluation(init_path, None, device=args.device)
    else:
        model = load_for_evaluation(args.checkpoint, args.untrained, args.seed, args.device)
    tasks = TASKS if args.task == "all" else (args.task,)
    results: dict[str, dict[str, TaskResult]] = {}
    failed: list[str] = []
    for task in tasks:
        folder = data / task if args.task == "all" else data
        if not folder.is_dir():
            print(f"{task}: no folder {folder}; skipped", file=sys.stderr)
            continue
        try:
            if tuned and task == tuned["task"]:  # baselines and zero-shot from the init, then the fine-tuned model
                results[task] = evaluate_with_baselines(init, task, folder, config, baselines=not args.no_baselines)
                results[task]["zero-shot"] = results[task].pop("model")
                results[task]["model"] = evaluate_finetuned(model, head, task, folder, config)
            else:
                results[task] = evaluate_with_baselines(model, task, folder, config, baselines=not args.no_baselines)
        except DataFormatError as error:  # unusable data: say which file and field, go on with the others
            print(f"{task}: error: {error}", file=sys.stderr)
            failed.append(task)
    if not results:
        print(f"error: nothing evaluated under {data}" + (f" (failed: {', '.join(failed)})" if failed else
                                                          " (no task folder found)"), file=sys.stderr)
        return 1
    label = f"untrained {args.untrained}" if args.untrained else f"fine-tuned ({tuned['task']})" if tuned else "ours"
    print(format_table(results, model_label=label))
    print("paper: VideoCLIP's zero-shot numbers on the real datasets (a different dataset from a synthetic world);"
          " '(unconfirmed)' = recalled, not confirmed in a source")
    if tuned:
        print(f"fine-tuned on {tuned['task']} from {tuned['init_checkpoint']} ({tuned['config']} recipe); "
              f"{tuned['selection_note']}. 'paper fine-tuned': the paper's fine-tuned rows "
              "(paperswithcode's VideoCLIP page; MSR-VTT QA recalled)")
    for line in _notes(results):
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
