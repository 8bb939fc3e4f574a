"""Fine-tuned against zero-shot on the synthetic world: every recipe, several seeds, with spread.

Starts every run from the same pre-trained teaching run (the one the notebooks share, trained here
when absent), fine-tunes each task with its teaching recipe (``vclip.finetune``, selection on the
validation split) once per seed, and evaluates the selected checkpoint on the task's test split next
to the zero-shot score of the model it started from. The seed changes the head's initialisation,
the held-out validation videos, the batch order, the captions drawn and dropout. COIN is reported
with background seconds, without them, and beside the background share (the all-background
baseline), so a model that predicts background everywhere cannot look good.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/finetune.py                       # 3 seeds, all tasks
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/finetune.py --tasks coin --seeds 0 1 2 3 4
    python benchmarks/finetune.py --table benchmarks/results/finetune.json       # README/docs table

Writes ``benchmarks/results/finetune.json`` (``--out``) and prints a table; asserts nothing. ``--table``
prints the markdown table that README.md and docs/finetuning.md quote (tests/test_docs_numbers.py
keeps them equal).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from vclip.rundir import RunDir  # noqa: E402
from vclip.tasks import TASKS  # noqa: E402
from vclip.training.finetuned import finetune_tasks  # noqa: E402
from vclip.training.finetuning import (  # noqa: E402
    finetune,
    format_benchmark,
    load_finetune_recipe,
    recipe,
)

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/finetune.py"


# (task, metric) rows of the markdown table: each task's headline metric, and COIN without background
ROWS = (("youcook2", "R@1"), ("msrvtt", "R@1"), ("msrvtt_qa", "accuracy"), ("coin", "frame_acc"),
        ("coin", "frame_acc_no_bg"), ("crosstask", "recall"))


def markdown_table(payload: dict) -> str:
    """Zero-shot and fine-tuned (mean +- std, min..max over the seeds) per (task, metric), and COIN's
    background share (what predicting background everywhere scores)."""
    results, seeds = payload["results"], len(payload["seeds"])
    lines = [f"| task | metric | zero-shot | fine-tuned, mean +- std (min..max) of {seeds} seeds | "
             "better than zero-shot in every seed |", "| --- | --- | --- | --- | --- |"]
    for task, metric in ROWS:
        if task not in results:
            continue
        entry, tuned = results[task]["metrics"][metric], results[task]["metrics"][metric]["fine_tuned"]
        every = all(value > entry["zero_shot"] for value in tuned["values"])
        lines.append(f"| {task} | {metric} | {entry['zero_shot']:.1f} | {tuned['mean']:.1f} +- {tuned['std']:.1f} "
                     f"({tuned['min']:.1f}..{tuned['max']:.1f}) | {'yes' if every else 'NO'} |")
        if (task, metric) == ("coin", "frame_acc"):
            lines.append(f"| coin | background share (all-background baseline) | {results['coin']['background_share']:.1f} "
                         f"| {results['coin']['background_share']:.1f} | |")
    return "\n".join(lines)


def spread(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "values": values}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="data/generated/synthetic", help="a synthetic world root")
    parser.add_argument("--work", default="runs/benchmarks/finetune", help="run directories go here")
    parser.add_argument("--tasks", nargs="+", default=list(finetune_tasks()), choices=finetune_tasks())
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--pretrain-steps", type=int, default=128, help="steps of the shared teaching run")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "finetune.json"))
    parser.add_argument("--table", metavar="RESULT_JSON", default=None,
                        help="print the markdown table of a saved result and exit")
    args = parser.parse_args(argv)
    if args.table:
        print(markdown_table(json.loads(Path(args.table).read_text())))
        return 0
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    from vclip.notebooks import teaching_run

    name = f"tiny-steps{args.pretrain_steps}-seed0"
    init = teaching_run(args.data, "runs/notebooks", name=name, preset="tiny", steps=args.pretrain_steps, seed=0)
    results: dict = {}

    def save() -> dict:  # after every task, so that a stopped run keeps what it measured
        payload = {"command": COMMAND + (f" --tasks {' '.join(args.tasks)}" if args.tasks != list(finetune_tasks()) else "")
                   + (f" --seeds {' '.join(map(str, args.seeds))}" if args.seeds != [0, 1, 2] else ""),
                   "data": "the default synthetic world (make data)", "init": f"runs/notebooks/runs/{name} (tiny preset)",
                   "selection": "lowest validation loss (held-out training videos; CrossTask videos_val.csv)",
                   "seeds": args.seeds, "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
                   "results": results}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(payload, indent=1) + "\n")
        return payload

    for task in args.tasks:
        runs = []
        for seed in args.seeds:
            output = Path(args.work) / f"{task}-seed{seed}"
            RunDir(output).remove()  # under its lock: a run another process owns is refused, not removed
            started = time.perf_counter()
            summary = finetune(recipe(task, "teaching", init=str(init), data=args.data, output=str(output),
                                      seed=seed, progress=False)).summary
            runs.append({"seed": seed, "selected_epoch": summary["selected_epoch"], "updates": summary["updates"],
                         "seconds": time.perf_counter() - started, "test": summary["test"]["metrics"],
                         "zero_shot": summary["zero_shot_test"]["metrics"]})
            headline = TASKS[task].metrics[0]
            print(f"{task} seed {seed}: {headline} fine-tuned {runs[-1]['test'][headline]:.1f} vs zero-shot "
                  f"{runs[-1]['zero_shot'][headline]:.1f} ({runs[-1]['seconds']:.0f} s, {summary['updates']} updates)",
                  flush=True)
        metrics = [m for m in TASKS[task].metrics if m != "all_background"]
        results[task] = {
            "recipe": load_finetune_recipe("teaching")[task],
            "metrics": {m: {"fine_tuned": spread([r["test"][m] for r in runs]),
                            "zero_shot": runs[0]["zero_shot"][m]} for m in metrics},
            "fine_tuned_beats_zero_shot": all(r["test"][TASKS[task].metrics[0]] > r["zero_shot"][TASKS[task].metrics[0]]
                                              for r in runs),
            "runs": runs,
        }
        if task == "coin":
            results[task]["background_share"] = runs[0]["test"]["all_background"]
            results[task]["predicted_background"] = spread([r["test"]["predicted_background"] for r in runs])
        payload = save()
    print(format_benchmark(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
