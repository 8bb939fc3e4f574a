"""The six zero-shot tasks of VideoCLIP, each a function of a ``VideoCLIP`` model and an evaluation folder.

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

``evaluate_task(model, task, folder)`` returns a :class:`TaskResult`; ``evaluate_baselines(task, folder)``
gives chance and (on a synthetic folder, from ``synthetic_truth.json``) the oracle;
``evaluate_all(model, world_root)`` runs every task whose folder exists under ``world_root``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import torch

from vclip.tasks.coin import coin_chance, coin_oracle, evaluate_coin
from vclip.tasks.common import EvalConfig, TaskResult, model_device, timed
from vclip.tasks.crosstask import crosstask_chance, crosstask_oracle, evaluate_crosstask
from vclip.tasks.didemo import didemo_chance, didemo_oracle, evaluate_didemo
from vclip.tasks.qa import evaluate_qa, qa_chance, qa_oracle
from vclip.tasks.retrieval import evaluate_retrieval, retrieval_chance, retrieval_oracle

logger = logging.getLogger(__name__)

TASKS = ("youcook2", "msrvtt", "msrvtt_qa", "didemo", "crosstask", "coin")

# The numbers each task reports, headline first (metric names of vclip.metrics).
MAIN_METRICS: dict[str, tuple[str, ...]] = {
    "youcook2": ("R@1", "R@5", "R@10", "MedR"),
    "msrvtt": ("R@1", "R@5", "R@10", "MedR"),
    "msrvtt_qa": ("accuracy",),
    "didemo": ("rank@1", "rank@5", "mIoU"),
    "crosstask": ("recall",),
    "coin": ("frame_acc", "frame_acc_no_bg", "all_background"),
}

_MODEL = {  # the retrieval tasks take the task name too (evaluate_retrieval)
    "msrvtt_qa": evaluate_qa,
    "didemo": evaluate_didemo,
    "crosstask": evaluate_crosstask,
    "coin": evaluate_coin,
}
_CHANCE = {
    "youcook2": partial(retrieval_chance, "youcook2"),
    "msrvtt": partial(retrieval_chance, "msrvtt"),
    "msrvtt_qa": qa_chance,
    "didemo": didemo_chance,
    "crosstask": crosstask_chance,
    "coin": coin_chance,
}
_ORACLE = {
    "youcook2": partial(retrieval_oracle, "youcook2"),
    "msrvtt": partial(retrieval_oracle, "msrvtt"),
    "msrvtt_qa": qa_oracle,
    "didemo": didemo_oracle,
    "crosstask": crosstask_oracle,
    "coin": coin_oracle,
}


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")


# The annotation file (or folder) that marks an evaluation folder of each task.
ANNOTATION_MARKERS: dict[str, tuple[str, ...]] = {
    "youcook2": ("validation_youcook.csv", "youcookii_annotations_trainval.json"),
    "msrvtt": ("MSRVTT_JSFUSION_test.csv",),
    "msrvtt_qa": ("MSR_MC_test.csv",),
    "didemo": ("test_data.json",),
    "crosstask": ("crosstask_release", "tasks_primary.txt"),
    "coin": ("COIN.json",),
}


def resolve_task_folder(task: str, folder: str | Path) -> Path:
    """``folder`` itself when it holds the task's annotation file, else ``folder/<task>`` when that does
    (so a synthetic world's root can be passed); otherwise ``folder`` (the task then names what is missing)."""
    _check_task(task)
    folder = Path(folder)
    if any((folder / marker).exists() for marker in ANNOTATION_MARKERS[task]):
        return folder
    if any((folder / task / marker).exists() for marker in ANNOTATION_MARKERS[task]):
        return folder / task
    return folder


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
    _check_task(task)
    config = config or EvalConfig()
    folder = resolve_task_folder(task, folder)
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):  # the trainer's wrapped model
        model = model.module
    if device is not None and torch.device(device).type != model_device(model).type:
        raise ValueError(f"device={device!r} but the model is on {model_device(model)}; move the model first")
    if task in ("youcook2", "msrvtt"):
        result = timed(lambda: evaluate_retrieval(model, task, folder, config))
    else:
        result = timed(lambda: _MODEL[task](model, folder, config))
    logger.info("%s: %s (N=%d, %d missing features, %.1f s)", task, result.metrics, result.n_evaluated,
                result.n_missing_features, result.seconds)
    return result


def evaluate_baselines(task: str, folder: str | Path, config: EvalConfig | None = None) -> dict[str, TaskResult]:
    """Chance (always) and the oracle (only on a folder with ``synthetic_truth.json``) for one task."""
    from vclip.synthetic import TRUTH_FILE, load_truth

    _check_task(task)
    config = config or EvalConfig()
    folder = resolve_task_folder(task, folder)
    baselines = {"chance": timed(lambda: _CHANCE[task](folder, config=config))}
    if (Path(folder) / TRUTH_FILE).is_file():
        truth = load_truth(folder)
        baselines["oracle"] = timed(lambda: _ORACLE[task](folder, truth, config=config))
    return baselines


def evaluate_all(
    model, world_root: str | Path, tasks: Sequence[str] = TASKS, config: EvalConfig | None = None,
    baselines: bool = True,
) -> dict[str, dict[str, TaskResult]]:
    """Every task in ``tasks`` whose folder ``<world_root>/<task>`` exists (a synthetic world's layout).

    Returns ``{task: {"model": TaskResult, "chance": ..., "oracle": ...}}`` (baselines when asked for);
    a task whose folder is absent is logged and left out.
    """
    config = config or EvalConfig()
    world_root = Path(world_root)
    results: dict[str, dict[str, TaskResult]] = {}
    for task in tasks:
        _check_task(task)
        folder = world_root / task
        if not folder.is_dir():
            logger.warning("%s: no folder %s; skipped", task, folder)
            continue
        results[task] = {"model": evaluate_task(model, task, folder, config)}
        if baselines:
            results[task].update(evaluate_baselines(task, folder, config))
    return results


__all__ = ["ANNOTATION_MARKERS", "MAIN_METRICS", "TASKS", "resolve_task_folder", "EvalConfig", "TaskResult", "evaluate_all", "evaluate_baselines", "evaluate_task"]
