"""Fine-tuned runs as the rest of the kit reads them: the tasks that can be fine-tuned, ``--init``, ``finetune.json``.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (fine-tuned results beside zero-shot). Reference:
fairseq ``examples/MMPT`` (``mmpt_cli/predict.py`` loads a fine-tuned checkpoint and scores it on the
test split). :mod:`vclip.training.finetuning` writes these runs; the evaluation, the model export and
the notebooks read them through this module, which does not import the training loop.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vclip.errors import CheckpointError, ConfigError
from vclip.rundir import CHECKPOINTS_DIR, STEP_NAME, RunDir, read_json_file
from vclip.tasks.common import EvalConfig

SUMMARY_NAME = "finetune.json"


def finetune_tasks() -> tuple[str, ...]:
    """The registered tasks that declare fine-tuning hooks (``Task.finetuning``), in registration order."""
    from vclip.tasks import TASKS

    return tuple(name for name, task in TASKS.items() if task.finetuning is not None)


def task_hooks(task: str):
    """The fine-tuning hooks of ``task`` (:class:`vclip.tasks.training.TaskFinetuning`); a ConfigError
    names the tasks that have them."""
    from vclip.tasks import TASKS

    hooks = TASKS[task].finetuning if task in TASKS else None
    if hooks is None:
        raise ConfigError(f"task must be one of {', '.join(finetune_tasks())}, got {task!r}")
    return hooks


def resolve_init(path: str | Path) -> Path:
    """The checkpoint an ``--init`` names: a pre-training run's ``checkpoints/BEST`` (lowest validation
    loss) when it has one, else what :func:`vclip.checkpoint.resolve_checkpoint` finds.

    A ``BEST`` that names a checkpoint without weights is a :class:`CheckpointError` (starting from
    ``LATEST`` instead would fine-tune another model than the run's best without saying so).
    """
    from vclip.checkpoint import resolve_checkpoint

    path = Path(path)
    run = RunDir(path)
    if path.is_dir() and run.best_path.is_file():
        folder = run.best()  # only the kit's checkpoint names, inside checkpoints/ (vclip.rundir)
        if not (folder / "model.safetensors").is_file():
            raise CheckpointError(
                f"{run.best_path} names {folder.name}, but {folder} has no model.safetensors; pass --init with "
                f"one checkpoint folder of {run.checkpoints} to start from another checkpoint"
            )
        return folder
    return resolve_checkpoint(path)


def load_init(path: str | Path):
    """(model in train mode, the resolved checkpoint path) for ``--init``."""
    from vclip.checkpoint import load_model
    from vclip.huggingface import is_hub_name

    if not Path(path).exists() and is_hub_name(path):  # a Hugging Face Hub name (vclip.hub)
        return load_model(path).train(), str(path)
    resolved = resolve_init(path)
    return load_model(resolved).train(), resolved


def check_init(model, init: str | Path, resolved: Path, feature_width: int | None, vocab_size: int) -> None:
    """Refuse an ``--init`` model that cannot fine-tune on this task's data (before the run directory exists).

    Its video tower must take the features' width (512: S3D's ``video_embedding``), its text tower the
    tokenizer's vocabulary, and every weight must be finite; else a :class:`CheckpointError` naming the init.
    """
    source = f"--init {init}" + ("" if Path(resolved) == Path(init) else f" ({resolved})")
    config = model.config
    if feature_width is not None and config.video_feature_dim != feature_width:
        raise CheckpointError(f"{source}: its video tower takes {config.video_feature_dim}-d features, but the "
                              f"task's features are {feature_width}-d; expected a model pre-trained on these features")
    if config.vocab_size != vocab_size:
        raise CheckpointError(f"{source}: its text tower has a vocabulary of {config.vocab_size} tokens, expected "
                              f"the tokenizer's {vocab_size} (bert-base-uncased)")
    broken = [name for name, weight in model.named_parameters() if not torch.isfinite(weight).all()]
    if broken:
        raise CheckpointError(f"{source}: {len(broken)} weight tensor(s) hold NaN or inf (e.g. {', '.join(broken[:3])}); "
                              "expected finite weights")


SUMMARY_FIELDS = {"task": str, "config": str, "init_checkpoint": str, "checkpoint": str, "selection_note": str,
                  "test": dict, "zero_shot_test": dict}
"""What ``finetune.json`` must hold, and of which type, for the evaluation to read it."""


def finetuned_run(path: str | Path) -> dict | None:
    """The ``finetune.json`` summary of a fine-tuning run directory (or of its checkpoint folder), else None.

    A fine-tuning run that did not finish (its ``config.json`` is a fine-tuning configuration or its
    checkpoints are ``epoch_XXX``, but there is no ``finetune.json``: killed, or failed) is a
    :class:`CheckpointError`, never taken for a pre-trained model; so is a ``finetune.json`` that is not
    JSON or whose fields have the wrong types.
    """
    path = Path(path)
    candidates = [path, path.parent.parent] if path.parent.name == CHECKPOINTS_DIR else [path]
    for candidate in candidates:
        summary_path = candidate / SUMMARY_NAME
        if summary_path.is_file():
            summary = read_json_file(summary_path)
            wrong = [f"{name} ({kind.__name__})" for name, kind in SUMMARY_FIELDS.items()
                     if not isinstance(summary.get(name), kind)]
            tasks = finetune_tasks()
            if wrong or summary["task"] not in tasks:
                raise CheckpointError(f"{summary_path}: expected a vclip fine-tuning summary; missing or mistyped "
                                      f"{', '.join(wrong) if wrong else 'task (one of ' + ', '.join(tasks) + ')'}")
            return summary
    for candidate in candidates:
        run = RunDir(candidate)
        started = run.config_path.is_file() and "task" in _json_or_empty(run.config_path)
        if started or any(name.startswith("epoch_") for name in run.checkpoint_names()):
            raise CheckpointError(
                f"{candidate} is a fine-tuning run that did not finish (no {SUMMARY_NAME}: killed or failed before "
                f"its test evaluation); its checkpoints are not a fine-tuned result; continue it with --resume or "
                f"fine-tune again with another --output"
            )
    return None


def _json_or_empty(path: Path) -> dict:
    try:
        return read_json_file(path)
    except CheckpointError:
        return {}


def load_finetuned(path: str | Path):
    """(model, head or None, summary) of a fine-tuning run: the checkpoint ``finetune.json`` names, eval mode."""
    from vclip.checkpoint import load_model

    summary = finetuned_run(path)
    if summary is None:
        raise FileNotFoundError(f"{path} is not a fine-tuning run (no {SUMMARY_NAME})")
    hooks = task_hooks(summary["task"])
    path = Path(path)
    if (path / SUMMARY_NAME).is_file() and (path / "model.safetensors").is_file():
        # an exported model folder (``python -m vclip.hub``): the selected weights lie beside the summary
        head = hooks.load_head(path)
        return load_model(path).eval(), head.eval() if head is not None else None, summary
    run_dir = path if (path / SUMMARY_NAME).is_file() else path.parent.parent
    folder = run_dir / summary["checkpoint"]
    if not STEP_NAME.fullmatch(folder.name) or folder.resolve().parent != (run_dir / CHECKPOINTS_DIR).resolve():
        raise CheckpointError(f"{run_dir / SUMMARY_NAME}: checkpoint: expected checkpoints/step_XXXXXX of this run, "
                              f"found {summary['checkpoint']!r}")
    if not (folder / "model.safetensors").is_file():
        raise CheckpointError(f"{run_dir / SUMMARY_NAME} names {summary['checkpoint']}, but {folder} has no "
                              "model.safetensors (the fine-tuned weights); fine-tune again with another --output")
    head = hooks.load_head(folder)
    return load_model(folder).eval(), head.eval() if head is not None else None, summary


def evaluate_finetuned(model, head, task: str, folder, config: EvalConfig | None = None):
    """The test-split TaskResult of a fine-tuned model: the task's hook (COIN: through its head), or, for a
    task whose hook leaves it to the zero-shot evaluation, :func:`vclip.tasks.evaluate_task`."""
    from vclip.tasks import evaluate_task, resolve_task_folder

    result = task_hooks(task).evaluate(model, head, resolve_task_folder(task, folder), config)
    return result if result is not None else evaluate_task(model, task, folder, config)


# ---------------------------------------------------------------------------------------- reports
def summary_rows(summary: dict) -> list[list[str]]:
    """The rows of :func:`format_summary` (a header, then one per metric), as text cells."""
    from vclip.tasks import TASKS

    task = summary["task"]

    def paper(metric: str, setting: str) -> str:
        number = TASKS[task].paper_number(metric, setting)
        return number.format() if number else "-"

    rows = [["metric", "fine-tuned", "zero-shot (init)", "paper zero-shot", "paper fine-tuned"]]
    for metric in TASKS[task].metrics:
        tuned = summary["test"]["metrics"].get(metric)
        zero = summary["zero_shot_test"]["metrics"].get(metric)
        rows.append([metric, "-" if tuned is None else f"{tuned:.1f}", "-" if zero is None else f"{zero:.1f}",
                     paper(metric, "zero-shot"), paper(metric, "fine-tuned")])
    return rows


def format_summary(summary: dict) -> str:
    """Fine-tuned beside zero-shot (the init model, same test split) and the paper's numbers."""
    rows = summary_rows(summary)
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


__all__ = ["SUMMARY_FIELDS", "SUMMARY_NAME", "check_init", "evaluate_finetuned", "finetune_tasks", "finetuned_run",
           "format_summary", "load_finetuned", "load_init", "resolve_init", "summary_rows", "task_hooks"]
