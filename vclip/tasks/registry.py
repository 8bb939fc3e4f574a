"""The task registry: every evaluation task is one :class:`Task` subclass, registered once.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (the end tasks and their result tables).
Reference: fairseq ``examples/MMPT``, where a task's knowledge is spread over a test yaml
(``projects/retri/videoclip/test_*_zs*.yaml``), a meta processor and an aligner
(``mmpt/processors/dsprocessor.py``), a predictor (``mmpt/evaluators/predictor.py``) and a metric
(``metric.py``). Here it is one class in one module of :mod:`vclip.tasks`, registered the way
``timm`` registers models (``@register_model``)::

    @register_task
    class MyTask(Task):
        name = "my_task"                       # the --task name and the folder name in a world root
        title = "My task (what it measures)"
        markers = ("my_annotations.json",)     # files that mark an evaluation folder of this task
        metrics = ("accuracy",)                # headline first (names of vclip.metrics)
        paper = (PaperNumber("my_task", "zero-shot", "accuracy", 50.0, "section 4, my table"),)

        def load(self, folder, config, features): ...   # annotations + features, read once
        def score(self, model, data, config): ...       # -> TaskResult
        def chance(self, data, config): ...             # -> TaskResult
        def oracle(self, data, truth, config): ...      # -> TaskResult (synthetic folders)
        def check(self, report, path, features_dir, check_values): ...   # python -m vclip.data check

        finetuning = PairFinetuning("my_task", read_my_training_split, "text_to_video")  # optional:
        # python -m vclip.finetune --task my_task (vclip.tasks.training: split reader, batches, head, loss)

``python -m vclip.evaluate``, ``python -m vclip.data check``, the notebooks and the docs tables iterate
:data:`TASKS`; adding a task is one new module and one registration (imported by
``vclip/tasks/__init__.py``, or by the user's own code before calling :func:`vclip.tasks.evaluate_task`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

PWC = "paperswithcode.com/paper/videoclip-contrastive-pre-training-for-zero"
FAIRSEQ_4940 = "github.com/facebookresearch/fairseq/issues/4940"
TEMPCLR_3 = "github.com/yyuncong/TempCLR/issues/3"
RECALLED = "recalled from the paper, not confirmed in a source reachable here; check against the PDF"


@dataclass(frozen=True)
class PaperNumber:
    """One number VideoCLIP reports on the REAL dataset.

    Attributes:
        task: the registered task name.
        setting: "zero-shot" or "fine-tuned".
        metric: the metric name, as returned by :mod:`vclip.metrics`.
        value: percent (or a rank).
        table: the paper table it is printed in, by subject (arXiv 2109.14084; the tables' numbers are
            not given: they were not confirmed against the PDF here).
        source: where the value was read for this kit.
        confirmed: False for numbers recalled but not found in a reachable source.
    """

    task: str
    setting: str
    metric: str
    value: float
    table: str
    source: str = PWC
    confirmed: bool = True

    def format(self) -> str:
        """"22.7", or "73.9 (unconfirmed)": for report tables."""
        return f"{self.value:.1f}" + ("" if self.confirmed else " (unconfirmed)")


class Task:
    """One evaluation task: its name, files, metrics, baselines, data check and the paper's numbers.

    Subclasses set the class attributes and implement the methods; :func:`register_task` makes the one
    instance everyone uses. The loaded data (whatever :meth:`load` returns) is read once per evaluation
    and shared by :meth:`score`, :meth:`chance` and :meth:`oracle`.

    Attributes:
        name: the task's name (``--task``, the folder name in a synthetic world).
        title: a few words for tables and docs.
        markers: annotation files (or folders) that mark an evaluation folder of this task, in order of
            precedence; ``python -m vclip.data check`` recognises the layout by them.
        metrics: the numbers the task reports, headline first.
        paper: the paper's numbers, zero-shot and fine-tuned.
        protocol: one line on how the reference evaluates it (docs tables).
        finetuning: what fine-tuning needs from this task (a :class:`vclip.tasks.training.TaskFinetuning`:
            its training-split reader, batches, head and loss, evaluation of a fine-tuned model), or
            None when the task has no fine-tuning recipe. The task's module sets it
            (``MyTask.finetuning = PairFinetuning(...)``); :mod:`vclip.training.finetuning` reads it
            through the registry, never by a task's name.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    markers: ClassVar[tuple[str, ...]]
    metrics: ClassVar[tuple[str, ...]]
    paper: ClassVar[tuple[PaperNumber, ...]] = ()
    protocol: ClassVar[str] = ""
    finetuning: ClassVar[Any] = None

    # ---- reading --------------------------------------------------------------------------------

    def load(self, folder: Path, config, features):
        """Read the annotation file(s) of ``folder`` and the features of its items from ``features`` (a
        :class:`vclip.data.store.FeatureFolder`); items without features are skipped and counted.

        Returns the task's data object; it has ``result(scorer) -> TaskResult`` (an empty result that
        already counts what was evaluated and skipped), which the scorers fill.
        """
        raise NotImplementedError

    def n_evaluable(self, data) -> int:
        """How many items of the loaded data can be scored (0: nothing to evaluate)."""
        raise NotImplementedError

    def check(self, report, path: Path, features_dir: Path, check_values: bool) -> None:
        """Fill a :class:`vclip.data.check.Report` for ``path`` (the folder, or one annotation file) whose
        features are in ``features_dir`` (values checked for NaN/inf when ``check_values``)."""
        raise NotImplementedError

    def recognises(self, path: Path, columns: set[str] | None, document: Any) -> bool:
        """Whether an annotation *file* is this task's: by its name, its CSV header ``columns`` or its
        parsed JSON ``document`` (None when the file is not of that kind)."""
        return path.name in self.markers

    # ---- scoring --------------------------------------------------------------------------------

    def score(self, model, data, config):
        """The model's :class:`vclip.tasks.common.TaskResult` on the loaded data."""
        raise NotImplementedError

    def chance(self, data, config):
        """A random scorer through the same metric code."""
        raise NotImplementedError

    def oracle(self, data, truth, config):
        """A scorer that knows the synthetic world's latent steps (``synthetic_truth.json``)."""
        raise NotImplementedError

    # ---- what the paper says --------------------------------------------------------------------

    def paper_number(self, metric: str, setting: str = "zero-shot") -> PaperNumber | None:
        """The paper's number for ``metric`` in ``setting``, or None when the paper reports none."""
        return next((n for n in self.paper if (n.metric, n.setting) == (metric, setting)), None)

    def marks(self, folder: Path) -> bool:
        """Whether ``folder`` holds one of this task's annotation markers."""
        return any((Path(folder) / marker).exists() for marker in self.markers)

    def __repr__(self) -> str:
        return f"<task {self.name}: {self.title}>"


class TaskRegistry(dict):
    """``{name: Task}`` in registration order; ``for name in TASKS`` and ``name in TASKS`` read as before."""

    def __getitem__(self, name: str) -> Task:
        try:
            return super().__getitem__(name)
        except KeyError:
            raise ValueError(f"unknown task {name!r}; expected one of {', '.join(self)}") from None

    def tasks(self) -> Iterator[Task]:
        return iter(self.values())


TASKS = TaskRegistry()
"""Every registered task, by name, in registration order."""


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: check a :class:`Task` subclass and register its one instance under ``cls.name``."""
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"register_task expects a Task subclass, got {cls!r}")
    for attribute in ("name", "title", "markers", "metrics"):
        if not getattr(cls, attribute, None):
            raise TypeError(f"task class {cls.__name__} must set {attribute!r}")
    if cls.name in TASKS:
        raise ValueError(f"task {cls.name!r} is already registered (by {type(TASKS[cls.name]).__name__})")
    for number in cls.paper:
        if number.task != cls.name or number.metric not in cls.metrics:
            raise ValueError(f"task {cls.name!r}: paper number {number} names another task or a metric outside "
                             f"{cls.metrics}")
    TASKS[cls.name] = cls()
    return cls


def unregister_task(name: str) -> None:
    """Remove a task (tests that register a toy task clean up with this)."""
    TASKS.pop(name, None)


def get_task(name: str) -> Task:
    """The registered task called ``name``; a ValueError lists the known names."""
    return TASKS[name]


def tasks_markdown() -> str:
    """The table of tasks in ``docs/evaluation.md``, one row per registered task (a test keeps them equal):
    ``python -c "from vclip.tasks import registry; print(registry.tasks_markdown())"``."""
    lines = ["| task | folder | metrics (headline first) | paper, headline: zero-shot / fine-tuned | protocol |",
             "| --- | --- | --- | --- | --- |"]
    for task in TASKS.values():
        folder = " or ".join(f"`{marker}`" for marker in task.markers) + " + `features/`"
        headline = task.metrics[0]
        numbers = [task.paper_number(headline, setting) for setting in ("zero-shot", "fine-tuned")]
        tables = sorted({n.table for n in numbers if n is not None})
        paper = (f"{headline} " + " / ".join(n.format() if n else "-" for n in numbers)
                 + (f" ({'; '.join(tables)})" if tables else ""))
        lines.append(f"| `{task.name}` | {folder} | {', '.join(task.metrics)} | {paper} | {task.protocol} |")
    return "\n".join(lines)
