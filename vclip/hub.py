"""Hugging Face Hub model folders: a run's model card, Hub names, and ``python -m vclip.hub`` (export, convert).

Paper: VideoCLIP (Xu et al., EMNLP 2021). Reference: fairseq ``examples/MMPT``, whose released
pre-trained model is ``runs/retri/videoclip/checkpoint_best.pt`` (:mod:`vclip.checkpoint`).

A vclip checkpoint folder *is* a Hub model folder (``huggingface_hub.PyTorchModelHubMixin`` on
:class:`vclip.model.VideoCLIP`): ``config.json`` (the :class:`~vclip.model.VideoCLIPConfig`),
``model.safetensors`` and ``README.md``, the model card filled in here with the run's evaluation
table, the paper's citation and the licence. A fine-tuned COIN model adds its head
(``head.safetensors``, ``head.json``, :class:`vclip.tasks.heads.SegmentationHead`); an exported
fine-tuning run adds its ``finetune.json`` summary, so that ``vclip.evaluate --checkpoint FOLDER``
reports it as fine-tuned.

One command makes a self-contained folder to share (``push_to_hub`` or ``hf upload``; docs/model.md)::

    python -m vclip.hub runs/teaching --out hub/vclip-teaching          # a pre-training run (BEST, else LATEST)
    python -m vclip.hub runs/ft-coin --out hub/vclip-coin               # a fine-tuning run (model, head, summary)
    python -m vclip.hub checkpoint_best.pt --out hub/videoclip-release  # the reference's released checkpoint

Loading (:func:`vclip.checkpoint.load_model`, ``--checkpoint``, ``--init``) takes such a folder or a
Hub name ``org/name``. With ``HF_HUB_OFFLINE=1`` (the kit's tests, a machine without network) a Hub
name that is not in the local cache is one line saying how to pass a local folder instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from vclip.rundir import CheckpointError, RunDir, atomic_write_text, one_line

CITATION = """@inproceedings{xu-etal-2021-videoclip,
  title     = {{VideoCLIP}: Contrastive Pre-training for Zero-shot Video-Text Understanding},
  author    = {Xu, Hu and Ghosh, Gargi and Huang, Po-Yao and Okhonko, Dmytro and Aghajanyan, Armen and
               Metze, Florian and Zettlemoyer, Luke and Feichtenhofer, Christoph},
  booktitle = {Proceedings of the 2021 Conference on Empirical Methods in Natural Language Processing},
  pages     = {6787--6800},
  year      = {2021}
}"""
LICENCE = ("MIT, as the vclip kit and the reference implementation (fairseq `examples/MMPT`). Weights trained on "
           "third-party data (HowTo100M, YouCook2, MSR-VTT, COIN, CrossTask) are subject to those datasets' terms.")
NO_EVALUATION = ("No evaluation was recorded with this model. Measure it with "
                 "`python -m vclip.evaluate --task all --data DATA --checkpoint FOLDER`.")
CARD_FILE = "README.md"
SUMMARY_FILE = "finetune.json"
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*")


# ------------------------------------------------------------------------------------------ Hub names
def is_hub_name(name: str | os.PathLike) -> bool:
    """Whether ``name`` reads as a Hub repository id (``org/name``) rather than a local path."""
    text = str(name)
    return bool(_HUB_NAME.fullmatch(text)) and not text.startswith((".", "~")) and ".." not in text


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def offline_message(name: str) -> str:
    """The one line a Hub name gets when it cannot be fetched without network."""
    return (f"{name}: no such local folder, and HF_HUB_OFFLINE=1 forbids fetching it from the Hugging Face Hub "
            f"(nor is it in the local cache); pass a local folder instead: download it where the Hub is reachable "
            f"(hf download {name} --local-dir DIR) and give DIR")


@contextlib.contextmanager
def hub_download_errors(name: str):
    """Turn the Hub client's errors for ``name`` into one-line :class:`CheckpointError` messages."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    try:
        yield
    except (OfflineModeIsEnabled, LocalEntryNotFoundError) as error:
        if offline():
            raise CheckpointError(offline_message(name)) from None
        raise CheckpointError(f"{name}: cannot reach the Hugging Face Hub ({one_line(error, 160)}); "
                              "pass a local folder instead") from None
    except RepositoryNotFoundError:
        raise CheckpointError(f"{name}: no such local folder, and no such model on the Hugging Face Hub") from None
    except EntryNotFoundError as error:
        raise CheckpointError(f"{name}: not a vclip model on the Hub ({one_line(error, 160)})") from None
    except HfHubHTTPError as error:
        raise CheckpointError(f"{name}: the Hugging Face Hub refused ({one_line(error, 200)})") from None


# ------------------------------------------------------------------------------------------ the model card
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


def model_card_fields(title: str = "VideoCLIP (vclip)", description: str = "", evaluation: str = NO_EVALUATION,
                      model_id: str = "FOLDER_OR_HUB_NAME", config=None) -> dict:
    """The values :data:`vclip.model.MODEL_CARD_TEMPLATE` is filled with."""
    architecture = "A VideoCLIPConfig (config.json)."
    if config is not None:
        architecture = (f"Hidden size {config.hidden_size}, {config.num_text_layers} text layers, "
                        f"{config.num_video_layers} video layers, {config.num_attention_heads} attention heads, "
                        f"video features of {config.video_feature_dim} per second (config.json).")
    return {"title": title, "description": description, "evaluation": evaluation, "model_id": model_id,
            "architecture": architecture, "citation": CITATION, "licence": LICENCE}


def run_card_fields(run_dir: str | os.PathLike, config=None, source: str = "") -> dict:
    """The card of the model of a run directory: a fine-tuning run's test table (finetune.json), else the
    pre-training run's zero-shot evaluations and validation losses (metrics.jsonl)."""
    run = RunDir(run_dir)
    summary_path = run.path / SUMMARY_FILE
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


def write_model_card(folder: str | os.PathLike, model, fields: dict) -> None:
    """(Re)write ``folder/README.md`` from ``fields`` with the model's card template (the mixin's)."""
    card = model.generate_model_card(**fields)
    atomic_write_text(Path(folder) / CARD_FILE, str(card))


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
        if (run_dir / "metrics.jsonl").is_file() or (run_dir / SUMMARY_FILE).is_file():
            fields = run_card_fields(run_dir, model.config, source=f" (checkpoint `{folder.name}`)")
        else:
            fields = model_card_fields(config=model.config)
    fields["model_id"] = f"ORG/{out.name}"  # its Hub name once pushed (or the local folder)
    model.save_pretrained(out, model_card_kwargs=fields)
    write_model_card(out, model, fields)  # the run's card, even where the mixin found a README.md
    if head is not None:
        head.save(out)
    if summary is not None:
        atomic_write_text(out / SUMMARY_FILE, json.dumps(summary, indent=1) + "\n")
    return Exported(out, kind, Path(folder))


@dataclass
class HubCommand:
    """Write the Hugging Face Hub model folder of a vclip run, a checkpoint folder, or the reference's released
    checkpoint_best.pt (converted): config.json, model.safetensors, README.md (the model card with the run's
    evaluation table, the paper's citation and the licence), and a fine-tuned model's head and summary."""

    source: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="SOURCE")]  # a pre-training run (its BEST checkpoint, else LATEST), a fine-tuning run, a checkpoint folder, or checkpoint_best.pt
    out: Annotated[str, tyro.conf.arg(metavar="FOLDER")]  # the folder to write (push it with `hf upload ORG/NAME OUT` or VideoCLIP.push_to_hub)
    overwrite: bool = False  # replace a non-empty --out
    verbose: bool = False  # also show the libraries' log lines


def main(argv: list[str] | None = None) -> int:
    """``python -m vclip.hub SOURCE --out FOLDER``: 0 when written, 2 on bad input (one line)."""
    from vclip.config import ConfigError, parse_typed_command
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


__all__ = ["CITATION", "LICENCE", "export", "hub_download_errors", "is_hub_name", "model_card_fields",
           "run_card_fields", "write_model_card"]
