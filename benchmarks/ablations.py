"""The paper's two ablations at CPU teaching size, paired over seeds: random groups, and exact alignment.

Paper: VideoCLIP sections 3.3 (overlapped clips), 3.4 (retrieval augmentation) and the ablation study
(section 5, Table 6). Reference: ``projects/retri/videoclip/how2.yaml`` and ``mmpt/tasks/retritask.py``.

    python benchmarks/ablations.py --world data/generated/synthetic --seeds 0 1 2 3 4 --out OUT

For each condition and seed: pre-train the tiny model on the world's pre-training folder with the
teaching configuration (``vclip/configs/teaching.json``; ``--steps`` and ``--candidates`` override
it), then evaluate zero-shot text->video retrieval. One seed gives every condition the same
initialisation and the same clip draws where the conditions allow, so differences are paired.

Evaluations (rows of ``runs``, key ``task``; :func:`vclip.synthetic.measure.retrieval_views`):
``youcook2`` (the headline: clips of many tasks of one domain, each caption naming its task and its
step; the oracle is near 100), ``youcook2_within_video`` (each text against its own video's clips),
``youcook2_same_step`` (each text against the clips of other videos showing the same step) and
``msrvtt`` (short clips of every domain, descriptions without the task).

Writes ``OUT/ablations.json``: ``runs`` (condition, seed, task, R@1/R@5/R@10 in percent, MedR, N,
and for each run the training curve and the same-task / same-domain share of its last groups),
``summary`` ({task: {condition: mean, std, and the paired difference to ``paper`` with its 95%
t-interval}}), ``reference`` (chance, oracle and the untrained model per task) and ``settings``.

Conditions: ``paper`` (overlapped clips + retrieval-augmented groups), ``no_retrieval`` (random
groups), ``exact`` (video span = text span), ``exact_no_retrieval`` (both).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

import numpy as np

from vclip.rundir import RunDir
from vclip.synthetic.measure import t_half_width

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CONDITIONS = {
    "paper": {},
    "no_retrieval": {"retrieval": False},
    "exact": {"alignment": "exact"},
    "exact_no_retrieval": {"alignment": "exact", "retrieval": False},
}
HEADLINE = "youcook2"


def paired_difference(values: list[float], baseline: list[float]) -> dict:
    """Mean of ``values - baseline`` (paired by seed) with its 95% t-interval."""
    diffs = np.asarray(values, dtype=float) - np.asarray(baseline, dtype=float)
    mean = float(diffs.mean())
    if len(diffs) < 2:
        return {"mean": mean, "low": None, "high": None, "n": len(diffs)}
    half = t_half_width(diffs)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": len(diffs)}


def baseline_views(world: Path) -> dict[str, dict]:
    """Chance and oracle on the headline and the MSR-VTT-like set."""
    from vclip.evaluate import evaluate_baselines

    out = {}
    for task in ("youcook2", "msrvtt"):
        if (world / task).is_dir():
            base = evaluate_baselines(task, world)
            out[task] = {name: base[name].metrics["R@1"] for name in ("chance", "oracle") if name in base}
    return out


def group_shares(trainer) -> dict:
    """Same-task and same-domain share (%) of the video pairs in the trainer's current groups."""
    from vclip.synthetic import load_truth
    from vclip.synthetic.language import TASKS_BY_TITLE
    from vclip.synthetic.measure import same_task_share

    truth = load_truth(Path(trainer.cfg.data))
    tasks = [truth.video_tasks[v] for v in trainer.train_ids]
    domains = [TASKS_BY_TITLE[t].domain for t in tasks]
    groups = trainer.epoch_groups or []
    return {"group_same_task_percent": same_task_share(groups, tasks),
            "group_same_domain_percent": same_task_share(groups, domains)}


def run_one(world: Path, out: Path, condition: str, seed: int, overrides: dict, data) -> list[dict]:
    from vclip.pretrain import Trainer, load_recipe
    from vclip.synthetic.measure import retrieval_views

    output = str(out / f"{condition}_seed{seed}")
    config = load_recipe("teaching").updated(**overrides, **CONDITIONS[condition], seed=seed, output=output,
                                             progress=False, device="cpu", save_every=10**9,
                                             data=str(world / "pretrain"))
    config = config.updated(eval_every=max(1, config.steps // 3), eval_data=str(world))
    RunDir(output).remove()  # under its lock: a run another process owns is refused, not removed
    t0 = time.perf_counter()
    trainer = Trainer(config, data=data)
    result = trainer.fit()
    train_s = time.perf_counter() - t0
    curve = [{"step": r["step"], "R@1": r["metrics"]["R@1"]} for r in result.history if r["kind"] == "eval"]
    val = [r["val_loss"] for r in result.history if r["kind"] == "val"]
    shared = {"condition": condition, "seed": seed, "steps": result.final_step, "train_seconds": round(train_s, 1),
              "final_val_loss": val[-1] if val else None, "curve": curve, **group_shares(trainer)}
    RunDir(output).remove()  # the checkpoints are not needed
    views = retrieval_views(trainer.model.eval(), world)
    return [{**shared, "task": task, **metrics} for task, metrics in views.items()]


def _run_in_worker(world: Path, out: Path, condition: str, seed: int, overrides: dict) -> list[dict]:
    from vclip.data.store import open_pretrain

    return run_one(world, out, condition, seed, overrides, open_pretrain(world / "pretrain"))


def summarise(runs: list[dict], conditions: list[str]) -> dict:
    summary: dict = {}
    for task in dict.fromkeys(r["task"] for r in runs):
        summary[task] = {}
        paper = {r["seed"]: r for r in runs if r["task"] == task and r["condition"] == "paper"}
        for condition in conditions:
            rows = {r["seed"]: r for r in runs if r["task"] == task and r["condition"] == condition}
            entry = {}
            for key in ("R@1", "R@5", "R@10"):
                values = [rows[s][key] for s in sorted(rows)]
                entry[key] = {"mean": float(np.mean(values)),
                              "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}
                seeds = [s for s in sorted(rows) if s in paper]
                if condition != "paper" and seeds:
                    entry[key]["minus_paper"] = paired_difference([rows[s][key] for s in seeds],
                                                                  [paper[s][key] for s in seeds])
            summary[task][condition] = entry
    return summary


LABELS = {
    "paper": "**paper recipe** (overlapped clips + retrieval groups)",
    "no_retrieval": "no retrieval (random groups)",
    "exact": "exact alignment",
    "exact_no_retrieval": "exact alignment, no retrieval",
}
VIEWS = ("youcook2", "youcook2_within_video", "youcook2_same_step", "msrvtt")


def markdown_table(payload: dict, views=VIEWS) -> str:
    """The R@1 table that README.md and docs/pretraining.md quote, from a result of this script.

    Rows: chance, the untrained model, each condition (mean +- std over seeds, then the difference to
    the paper recipe paired by seed with its 95% interval), the oracle. ``tests/test_docs_numbers.py``
    checks that the documents hold exactly this text, so they cannot drift from the committed result.
    """
    summary, reference = payload["summary"], payload["reference"]
    n_seeds = len(payload["settings"]["seeds"])
    header = (f"| R@1 (%), mean +- std of {n_seeds} seeds; [paired difference to the paper recipe, 95% interval] | "
              + " | ".join(f"`{v}`" for v in views) + " |")
    lines = [header, "| --- |" + " --- |" * len(views)]

    def baseline(name: str) -> str:
        cells = [f"{reference['baselines'][v][name]:.1f}" if v in reference["baselines"] else "" for v in views]
        return " | ".join(cells)

    untrained = [np.mean([u[v] for u in reference["untrained"]]) for v in views]
    lines.append(f"| chance | {baseline('chance')} |")
    lines.append(f"| untrained tiny model (mean of {len(reference['untrained'])}) | "
                 + " | ".join(f"{u:.1f}" for u in untrained) + " |")
    for condition, label in LABELS.items():
        if condition not in summary[views[0]]:
            continue
        cells = []
        for view in views:
            r1 = summary[view][condition]["R@1"]
            cell = f"{r1['mean']:.1f} +- {r1['std']:.1f}"
            diff = r1.get("minus_paper")
            if diff and diff["low"] is not None:
                cell += f" [{diff['mean']:+.1f}; {diff['low']:+.1f}..{diff['high']:+.1f}]"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append(f"| oracle (latent truth) | {baseline('oracle')} |")
    return "\n".join(re.sub(r"\|  (?=\|)", "| ", line) for line in lines)


def _interval(d: dict | None) -> str:
    if not d:
        return ""
    if d["low"] is None:
        return f"{d['mean']:+6.2f}"
    return f"{d['mean']:+6.2f} [{d['low']:+6.2f}, {d['high']:+6.2f}]"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="data/generated/synthetic", help="a synthetic world root")
    parser.add_argument("--out", default="runs/ablations")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=None, help="override the teaching configuration's steps")
    parser.add_argument("--candidates", type=int, default=None,
                        help="override the teaching configuration's num_candidates (neighbours per query video)")
    parser.add_argument("--jobs", type=int, default=1, help="train this many runs at once (one process each)")
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    parser.add_argument("--shares", choices=["fixed", "per_epoch"], default=None,
                        help="rank shares of the retrieval pass (default: the recipe's, fixed as the reference, "
                             "which the committed result used)")
    parser.add_argument("--table", metavar="RESULT_JSON", default=None,
                        help="print the markdown R@1 table of a saved result (the one README.md and "
                             "docs/pretraining.md quote) and exit")
    args = parser.parse_args(argv)
    if args.table:
        print(markdown_table(json.loads(Path(args.table).read_text())))
        return 0

    import torch

    from vclip.data.store import open_pretrain
    from vclip.model import VideoCLIP
    from vclip.pretrain import load_recipe
    from vclip.synthetic.measure import retrieval_views

    world, out = Path(args.world), Path(args.out)
    if not (world / "youcook2").is_dir() or not (world / "pretrain").is_dir():
        print(f"error: {world}: not a synthetic world root (run python -m vclip.synthetic --out {world})")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    overrides = {}
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.candidates is not None:
        overrides["num_candidates"] = args.candidates
    if args.shares is not None:
        overrides["retrieval.shares"] = args.shares
    settings = {**load_recipe("teaching").to_dict(), **overrides, "world": str(world), "seeds": args.seeds,
                "conditions": args.conditions}
    settings.pop("_comment", None)
    world_record = json.loads((world / "WORLD.json").read_text()) if (world / "WORLD.json").is_file() else {}
    settings["world_seed"], settings["world_preset"] = world_record.get("seed"), world_record.get("preset")
    data = open_pretrain(world / "pretrain")

    reference = {"baselines": baseline_views(world), "untrained": []}
    for seed in args.seeds:
        torch.manual_seed(seed)
        views = retrieval_views(VideoCLIP.from_preset("tiny").eval(), world)
        reference["untrained"].append({"seed": seed, **{task: v["R@1"] for task, v in views.items()}})
    print(f"R@1 (%) chance / oracle: {reference['baselines']}", flush=True)

    runs: list[dict] = []
    jobs = [(seed, condition) for seed in args.seeds for condition in args.conditions]  # seed-major: paired early
    if args.jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"))
        futures = [pool.submit(_run_in_worker, world, out, condition, seed, overrides) for seed, condition in jobs]
        results = (future.result() for future in futures)
    else:
        results = (run_one(world, out, condition, seed, overrides, data) for seed, condition in jobs)
    for (seed, condition), rows in zip(jobs, results):
        runs += rows
        line = "  ".join(f"{r['task']} {r['R@1']:5.1f}" for r in rows)
        print(f"{condition:20s} seed {seed}: R@1 {line}  same-task groups {rows[0]['group_same_task_percent']:.2f}%"
              f"  ({rows[0]['train_seconds']:.0f} s)", flush=True)
        summary = summarise(runs, args.conditions)
        (out / "ablations.json").write_text(json.dumps(
            {"settings": settings, "reference": reference, "runs": runs, "summary": summary}, indent=1))

    print("\nR@1 (%): mean +- std over seeds; difference to paper, paired by seed, with its 95% interval")
    for task, by_condition in summary.items():
        print(task)
        for condition, entry in by_condition.items():
            r1 = entry["R@1"]
            print(f"  {condition:20s} {r1['mean']:6.2f} +- {r1['std']:5.2f}   {_interval(r1.get('minus_paper'))}")
    print("\n" + markdown_table({"settings": settings, "reference": reference, "summary": summary}))
    print(f"\nwritten {out / 'ablations.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
