"""The zero-shot tasks of VideoCLIP, one registered :class:`~vclip.tasks.registry.Task` per module.

Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4 (zero-shot transfer to retrieval, VideoQA, action
localisation and segmentation). Reference: fairseq ``examples/MMPT``, ``mmpt_cli/predict.py`` with the
``projects/retri/videoclip/test_*_zs*.yaml`` configurations.

=============  ====================================  ================================================
task           folder layout (``data/README.md``)    module
=============  ====================================  ================================================
``youcook2``   validation_youcook.csv + features/    :mod:`vclip.tasks.retrieval`
``msrvtt``     MSRVTT_JSFUSION_test.csv + features/  :mod:`vclip.tasks.retrieval`
``msrvtt_qa``  MSR_MC_test.csv + features/           :mod:`vclip.tasks.qa`
``didemo``     test_data.json + features/            :mod:`vclip.tasks.didemo`
``crosstask``  crosstask_release/ + features/        :mod:`vclip.tasks.crosstask`
``coin``       COIN.json + features/                 :mod:`vclip.tasks.coin`
=============  ====================================  ================================================

One evaluation flows down: the program (:mod:`vclip.evaluate`) -> :func:`evaluate_task` -> the task's
``load`` (annotations, and features through one :class:`vclip.data.store.FeatureFolder`: each file read
once) -> ``score`` (the model) -> :mod:`vclip.metrics`. :func:`evaluate_with_baselines` scores chance and
(on a synthetic folder, from ``synthetic_truth.json``) the oracle on the same loaded data;
:func:`evaluate_all` runs every task whose folder exists under a world root.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vclip.data.store import FeatureFolder
from vclip.tasks.common import FEATURES_DIR, EvalConfig, TaskResult, model_device, timed
from vclip.tasks.registry import TASKS, PaperNumber, Task, get_task, register_task

# The built-in tasks: importing a module registers its task(s); this order (the paper's) is the order of
# every table and listing.
# isort: off
from vclip.tasks import retrieval, qa, didemo, crosstask, coin  # noqa: E402, F401
# isort: on

if TYPE_CHECKING:  # torch is imported where a model is scored: the registry itself loads without it
    import torch

logger = logging.getLogger(__name__)


def resolve_task_folder(task: str, folder: str | Path) -> Path:
    """``folder`` itself when it holds the task's annotation file, else ``folder/<task>`` when that does
    (so a synthetic world's root can be passed); otherwise ``folder`` (the task then names what is missing)."""
    spec = get_task(task)
    folder = Path(folder)
    if spec.marks(folder):
        return folder
    if spec.marks(folder / task):
        return folder / task
    return folder


def _unwrap(model, device):
    import torch

    if isinstance(model, torch.nn.parallel.DistributedDataParallel):  # the trainer's wrapped model
        model = model.module
    if device is not None and torch.device(device).type != model_device(model).type:
        raise ValueError(f"device={device!r} but the model is on {model_device(model)}; move the model first")
    return model


def load_task_data(task: str, folder: str | Path, config: EvalConfig | None = None):
    """What the task reads from ``folder`` (or ``<folder>/<task>``): its annotations and the features of
    its items, each feature file read once (the object every scorer of the task takes)."""
    return _load(get_task(task), resolve_task_folder(task, folder), config or EvalConfig())


def _load(spec: Task, folder: Path, config: EvalConfig):
    """The task's reader on a resolved folder, its features through one FeatureFolder (each file read once)."""
    return spec.load(folder, config, FeatureFolder(folder / FEATURES_DIR))


def _evaluate(model, task: str, folder, config: EvalConfig | None, device, baselines: bool) -> dict[str, TaskResult]:
    """Load the task's folder once, then score the model (when given) and the baselines (when asked) on it."""
    from vclip.data.truth import TRUTH_FILE, load_truth

    spec = get_task(task)
    config = config or EvalConfig()
    folder = resolve_task_folder(task, folder)
    start = time.perf_counter()
    data = _load(spec, folder, config)  # program -> task -> data (read once) -> model -> metrics
    load_seconds = time.perf_counter() - start
    empty = spec.n_evaluable(data) == 0
    results: dict[str, TaskResult] = {}
    if model is not None:
        model = _unwrap(model, device)
        results["model"] = data.result("model") if empty else timed(lambda: spec.score(model, data, config))
        results["model"].seconds += load_seconds
        logger.info("%s: %s (N=%d, %d missing features, %.1f s)", task, results["model"].metrics,
                    results["model"].n_evaluated, results["model"].n_missing_features, results["model"].seconds)
    if baselines and not empty:
        results["chance"] = timed(lambda: spec.chance(data, config))
        if (folder / TRUTH_FILE).is_file():
            truth = load_truth(folder)
            results["oracle"] = timed(lambda: spec.oracle(data, truth, config))
    return results


def evaluate_task(
    model, task: str, folder: str | Path, config: EvalConfig | None = None, device: str | torch.device | None = None
) -> TaskResult:
    """Evaluate ``model`` (a :class:`vclip.model.VideoCLIP`) zero-shot on one task's evaluation folder.

    ``folder`` is the task's evaluation folder, or a world root holding it as ``<root>/<task>``. The
    model is evaluated where it is; ``device``, when given, must be that device (a check for callers
    that track it). Items whose features are absent are skipped and counted (``n_missing_features``);
    when none can be evaluated the result has empty metrics and says what is missing
    (``missing_report()``).
    """
    return _evaluate(model, task, folder, config, device, baselines=False)["model"]


def evaluate_with_baselines(
    model, task: str, folder: str | Path, config: EvalConfig | None = None, baselines: bool = True,
    device: str | torch.device | None = None,
) -> dict[str, TaskResult]:
    """``{"model": ..., "chance": ..., "oracle": ...}`` for one folder, read once for all three.

    Chance always (when anything can be evaluated), the oracle only on a folder with
    ``synthetic_truth.json``; ``baselines=False`` gives the model's result alone.
    """
    return _evaluate(model, task, folder, config, device, baselines)


def evaluate_baselines(task: str, folder: str | Path, config: EvalConfig | None = None) -> dict[str, TaskResult]:
    """Chance (always) and the oracle (only on a folder with ``synthetic_truth.json``) for one task."""
    return _evaluate(None, task, folder, config, None, baselines=True)


def evaluate_all(
    model, world_root: str | Path, tasks: Sequence[str] | None = None, config: EvalConfig | None = None,
    baselines: bool = True,
) -> dict[str, dict[str, TaskResult]]:
    """Every task in ``tasks`` (default: every registered task) whose folder ``<world_root>/<task>`` exists.

    Returns ``{task: {"model": TaskResult, "chance": ..., "oracle": ...}}`` (baselines when asked for);
    a task whose folder is absent is logged and left out.
    """
    world_root = Path(world_root)
    results: dict[str, dict[str, TaskResult]] = {}
    for task in list(TASKS) if tasks is None else tasks:
        get_task(task)
        folder = world_root / task
        if not folder.is_dir():
            logger.warning("%s: no folder %s; skipped", task, folder)
            continue
        results[task] = evaluate_with_baselines(model, task, folder, config, baselines)
    return results


__all__ = ["TASKS", "EvalConfig", "PaperNumber", "Task", "TaskResult", "evaluate_all", "evaluate_baselines",
           "evaluate_task", "evaluate_with_baselines", "get_task", "load_task_data", "register_task", "resolve_task_folder"]
