"""A run as a Hugging Face Hub model folder: the run's model card (its evaluation table) and the export.

Paper: VideoCLIP (Xu et al., EMNLP 2021). Reference: fairseq ``examples/MMPT``, whose released
pre-trained model is ``runs/retri/videoclip/checkpoint_best.pt`` (:mod:`vclip.checkpoint`).

:func:`export` writes the self-contained folder of a pre-training run (its ``BEST`` checkpoint, else
``LATEST``), a fine-tuning run (the selected checkpoint, a COIN model's head, the ``finetune.json``
summary, so that ``vclip.evaluate --checkpoint FOLDER`` reports it as fine-tuned), a checkpoint folder,
or the reference's ``checkpoint_best.pt`` (converted): ``config.json``, ``model.safetensors`` and
``README.md``, the card of :func:`run_card_fields`. The command is ``python -m vclip.hub``
(:mod:`vclip.hub`); Hub names and the card's template are :mod:`vclip.huggingface`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from vclip.huggingface import NO_EVALUATION, model_card_fields, write_model_card
from vclip.rundir import RunDir, atomic_write_text
from vclip.training.finetuned import SUMMARY_NAME


def _markdown(rows: list[list[str]]) -> str:
    header, *body = rows
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _number(value) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def pretraining_evaluation(records: list[dict]) -> str:
    """The evaluation section of a pre-training run: its last zero-shot evaluation of each task (the
    ``eval`` records of metrics.jsonl) and its validation losses."""
    parts = []
    evals: dict[str, dict] = {}
    for record in records:
        if record.get("kind") == "eval" and isinstance(record.get("metrics"), dict):
            evals[str(record.get("task", "?"))] = record
    for task, record in evals.items():
        metrics = record["metrics"]
        rows = [["metric", f"zero-shot {task} (step {record.get('step')}, n={record.get('n')})"]]
        rows += [[name, _number(value)] for name, value in metrics.items()]
        parts.append(_markdown(rows))
    vals = [r for r in records if r.get("kind") == "val" and isinstance(r.get("val_loss"), (int, float))]
    if vals:
        best = min(vals, key=lambda r: r["val_loss"])
        parts.append(f"Validation loss (contrastive, held-out pre-training videos): lowest {best['val_loss']:.4f} at "
                     f"step {best['step']}, last {vals[-1]['val_loss']:.4f} at step {vals[-1]['step']}.")
    return "\n\n".join(parts) or NO_EVALUATION


def finetuning_evaluation(summary: dict) -> str:
    """The evaluation section of a fine-tuning run (``finetune.json``): fine-tuned beside zero-shot."""
    from vclip.training.finetuned import summary_rows

    return (_markdown(summary_rows(summary)) + f"\n\nTest split of `{summary['task']}`; {summary['selection_note']}. "
            "'paper': VideoCLIP's numbers on the real datasets (a different dataset if this run used a synthetic world).")


def run_card_fields(run_dir: str | os.PathLike, config=None, source: str = "") -> dict:
    """The card of the model of a run directory: a fine-tuning run's test table (finetune.json), else the
    pre-training run's zero-shot evaluations and validation losses (metrics.jsonl)."""
    run = RunDir(run_dir)
    summary_path = run.path / SUMMARY_NAME
    if summary_path.is_file():
        from vclip.rundir import read_json_file

        summary = read_json_file(summary_path)
        return model_card_fields(
            title=f"VideoCLIP fine-tuned on {summary['task']} (vclip)", config=config,
            description=(f"Fine-tuned with the {summary['config']} recipe ({summary['loss']} loss, {summary['updates']} "
                         f"updates); selected epoch {summary['selected_epoch']}."),
            evaluation=finetuning_evaluation(summary))
    records = run.read_metrics()
    steps = max((r.get("step", 0) for r in records), default=0)
    return model_card_fields(title="VideoCLIP pre-trained (vclip)", config=config,
                             description=f"Pre-trained with vclip for {steps} updates{source}.",
                             evaluation=pretraining_evaluation(records))


# ------------------------------------------------------------------------------------------ export
@dataclass
class Exported:
    folder: Path
    kind: str  # "pre-trained", "fine-tuned" or "converted"
    source: Path


def export(source: str | os.PathLike, out: str | os.PathLike, overwrite: bool = False) -> Exported:
    """Write the self-contained Hub model folder of ``source`` into ``out`` (module docstring).

    The weights are copied bit for bit (float32 as trained; the release's float16 cast to float32, as
    :func:`vclip.checkpoint.load_mmpt_checkpoint` loads it); nothing else of the run (trainer state,
    metrics) is written.
    """
    from vclip.checkpoint import load_mmpt_checkpoint, load_model, resolve_checkpoint
    from vclip.training.finetuned import finetuned_run, resolve_init, task_hooks

    source, out = Path(source), Path(out)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such run directory, checkpoint folder or file")
    if out.is_file() or (out.is_dir() and any(out.iterdir())):
        if not overwrite:
            raise FileExistsError(f"{out} already exists and is not empty; choose another --out or pass --overwrite")
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    head = summary = None
    if source.is_file() and source.suffix in (".pt", ".pth"):
        model, kind, folder = load_mmpt_checkpoint(source), "converted", source
        fields = model_card_fields(
            title="VideoCLIP, the reference's released pre-trained model (vclip)", config=model.config,
            description=(f"Converted from the reference's `{source.name}` (fairseq `examples/MMPT` layout, float16 "
                         "weights read back as float32) by `python -m vclip.hub`; the weights are unchanged."))
    else:
        summary = finetuned_run(source)
        folder = resolve_checkpoint(source) if summary is not None else resolve_init(source)
        if folder.is_file():  # a run directory's or folder's model.safetensors
            folder = folder.parent
        model = load_model(folder)
        kind = "fine-tuned" if summary is not None else "pre-trained"
        if summary is not None:
            head = task_hooks(summary["task"]).load_head(folder)  # COIN's segmentation head; None for the others
        run_dir = folder.parent.parent if folder.parent.name == "checkpoints" else folder
        if (run_dir / "metrics.jsonl").is_file() or (run_dir / SUMMARY_NAME).is_file():
            fields = run_card_fields(run_dir, model.config, source=f" (checkpoint `{folder.name}`)")
        else:
            fields = model_card_fields(config=model.config)
    fields["model_id"] = f"ORG/{out.name}"  # its Hub name once pushed (or the local folder)
    model.save_pretrained(out, model_card_kwargs=fields)
    write_model_card(out, model, fields)  # the run's card, even where the mixin found a README.md
    if head is not None:
        head.save(out)
    if summary is not None:
        atomic_write_text(out / SUMMARY_NAME, json.dumps(summary, indent=1) + "\n")
    return Exported(out, kind, Path(folder))


__all__ = ["Exported", "export", "finetuning_evaluation", "pretraining_evaluation", "run_card_fields"]
