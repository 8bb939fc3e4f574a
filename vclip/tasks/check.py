"""Checking any data folder or annotation file: recognise its layout, validate it, report what is there.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (the pre-training and evaluation datasets).
Reference: the meta processors of fairseq ``examples/MMPT/mmpt/processors/dsprocessor.py`` and
``how2processor.py`` read these layouts (see :mod:`vclip.data.check` for what they leave unsaid).

Layouts (see ``data/README.md``): ``pretrain``, ``store``, ``world`` (a synthetic world root: every
folder in it), and one per registered evaluation task (``vclip.tasks.TASKS``: ``youcook2``, ``msrvtt``,
``msrvtt_qa``, ``didemo``, ``crosstask``, ``coin``), whose markers and checks live with the task. This
module sits above the tasks (it asks the registry); the checks the tasks share (:class:`Report`,
``check_videos``, ...) are :mod:`vclip.data.check`, below them. The command is ``python -m vclip.data check``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from vclip.data.check import Report, check_pretrain, check_store
from vclip.data.formats import read_json, read_text
from vclip.errors import DataFormatError
from vclip.tasks import TASKS

# The data layouts that are not evaluation tasks, with the file (or folder) that identifies each; the
# tasks' own markers come from the task registry (vclip.tasks.TASKS) and are looked at after these.
DATA_MARKERS = {
    "world": ("WORLD.json",),
    "store": ("STORE.json",),
    "pretrain": ("raw_caption.json",),
}


def layout_markers() -> dict[str, tuple[str, ...]]:
    """layout -> its marker files, in order of precedence: the data layouts, then every registered task."""
    return {**DATA_MARKERS, **{task.name: task.markers for task in TASKS.values()}}


def layouts() -> tuple[str, ...]:
    return tuple(layout_markers())


def detect_layout(path: str | Path) -> str:
    """The layout of a folder (by its marker files) or of an annotation file (by name, header or content)."""
    path = Path(path)
    markers = layout_markers()
    if path.is_dir():
        for layout, names in markers.items():
            if any((path / marker).exists() for marker in names):
                return layout
        raise DataFormatError(path, "layout", "a folder holding one of " + ", ".join(
            sorted({m for ms in markers.values() for m in ms})), "none of them")
    if not path.is_file():
        raise DataFormatError(path, "path", "an existing folder or annotation file", "nothing there")
    for layout, names in markers.items():
        if path.name in names:
            return layout
    columns = document = None
    if path.suffix in (".csv", ".tsv"):
        header = (read_text(path, "an annotation file").splitlines() or [""])[0]
        columns = set(next(csv.reader([header], delimiter="\t" if "\t" in header else ","), []))
    elif path.suffix == ".json":
        document = read_json(path)
    for task in TASKS.values():
        if task.recognises(path, columns, document):
            return task.name
    if isinstance(document, dict):
        return "pretrain"
    raise DataFormatError(path, "layout", "a known annotation file (YouCook2/MSR-VTT CSV, COIN.json, "
                          "test_data.json, raw_caption.json...)", "an unrecognised file")


def check_path(path: str | Path, layout: str | None = None, features: str | Path | None = None,
               check_values: bool = True, dedup_seed: int = 0) -> list[Report]:
    """Check a folder or annotation file; a synthetic world root gives one report per folder."""
    path = Path(path)
    layout = layout or detect_layout(path)
    if layout not in layouts():
        raise ValueError(f"layout: expected one of {layouts()}, got {layout!r}")
    if layout == "world":
        return [r for child in sorted(p for p in path.iterdir() if p.is_dir())
                for r in check_path(child, None, None, check_values, dedup_seed)]
    folder = path if path.is_dir() else path.parent
    features_dir = Path(features) if features else folder / "features"
    report = Report(path, layout)
    try:
        _check_layout(report, path, folder, layout, features_dir, check_values, dedup_seed)
        if path.is_dir() and not features:
            _check_training_split(report, folder, layout)
    except DataFormatError as error:
        report.problems.append(f"FATAL {error}")
    if report.missing_features and report.usable_items == 0:
        report.problems.append(f"FATAL {features_dir}: features: expected <video_id>.npy for the listed videos, "
                               f"found none of {len(report.missing_features)}")
    return [report]


def _check_layout(report: Report, path: Path, folder: Path, layout: str, features_dir: Path,
                  check_values: bool, dedup_seed: int) -> None:
    if layout == "pretrain":
        check_pretrain(report, folder, check_values, dedup_seed)
    elif layout == "store":
        check_store(report, folder)
    else:
            TASKS[layout].check(report, path, features_dir, check_values)


def _check_training_split(report: Report, folder: Path, layout: str) -> None:
    """Count the training and validation items ``vclip.finetune`` would use (none is not a problem:
    a folder may hold the evaluation split only). Which files mark fine-tuning data, and what an empty
    training subset means, each task's fine-tuning hooks say (``TASKS[layout].finetuning``)."""
    hooks = TASKS[layout].finetuning if layout in TASKS else None
    if hooks is None or not hooks.has_training_data(folder):
        return
    from vclip.tasks.training import load_split

    note = hooks.no_training_note(folder)
    if note:
        report.notes.append(note)
        return
    for split in ("train", "val"):
        try:
            data = load_split(layout, folder, split)
        except DataFormatError as error:  # a broken training file or feature: a problem, not the folder's end
            report.problems.append(f"fine-tuning {split} split: {error}")
            continue
        report.counts[f"fine-tuning {split} items"] = len(data)
        if data.missing:
            report.missing_features += [v for v in dict.fromkeys(data.missing) if v not in report.missing_features]
            report.notes.append(f"fine-tuning {split} split: {len(data.missing)} items without features (skipped)")
        report.notes += [f"fine-tuning {split} split: {note}" for note in data.notes]
