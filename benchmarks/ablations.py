"""The paper's two ablations at CPU teaching size: without retrieval augmentation, and exact alignment.

Paper: VideoCLIP sections 3.3 (overlapped clips), 3.4 (retrieval augmentation) and the ablation study
(section 5). Reference: ``how2.yaml`` and ``mmpt/tasks/retritask.py``.

    python benchmarks/ablations.py --world data/generated/synthetic [--seeds 0 1 2] [--steps 150]

For each condition and seed: pre-train the tiny model on the synthetic world's pre-training folder
with the teaching configuration (``vclip/configs/teaching.json``), then evaluate zero-shot
text->video retrieval on its YouCook2-like set. Prints R@1/R@5/R@10 per run, the mean and standard
deviation over seeds per condition, next to the untrained model, chance and the oracle, and writes
everything to ``--out``/ablations.json.

Conditions: ``paper`` (overlapped clips + retrieval-augmented groups), ``no_retrieval`` (random
groups), ``exact`` (video span = text span), ``exact_no_retrieval`` (both, optional).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CONDITIONS = {
    "paper": {},
    "no_retrieval": {"retrieval": False},
    "exact": {"alignment": "exact"},
    "exact_no_retrieval": {"alignment": "exact", "retrieval": False},
}


def run_one(world: Path, out: Path, condition: str, seed: int, steps: int | None, data) -> dict:
    from vclip.evaluate import evaluate_task
    from vclip.pretrain import PretrainConfig, Trainer, load_config_file

    values = load_config_file("teaching")
    values.update(CONDITIONS[condition], seed=seed, output=str(out / f"{condition}_seed{seed}"), progress=False,
                  device="cpu", save_every=10**9)
    if steps is not None:
        values["steps"] = steps
    shutil.rmtree(values["output"], ignore_errors=True)
    t0 = time.perf_counter()
    trainer = Trainer(PretrainConfig(**values), data=data)
    result = trainer.fit()
    train_s = time.perf_counter() - t0
    metrics = evaluate_task(trainer.model.eval(), "youcook2", world).metrics
    val = [r["val_loss"] for r in result.history if r["kind"] == "val"]
    return {"condition": condition, "seed": seed, "steps": result.final_step, "train_seconds": train_s,
            "final_val_loss": val[-1] if val else None, **{k: metrics[k] for k in ("R@1", "R@5", "R@10", "MedR")}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="data/generated/synthetic", help="a synthetic world root")
    parser.add_argument("--out", default="runs/ablations")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None, help="override the teaching configuration's steps")
    parser.add_argument("--conditions", nargs="+", default=["paper", "no_retrieval", "exact"], choices=list(CONDITIONS))
    args = parser.parse_args(argv)

    import torch

    from vclip.data.store import open_pretrain
    from vclip.evaluate import evaluate_baselines, evaluate_task
    from vclip.model import VideoCLIP

    world, out = Path(args.world), Path(args.out)
    if not (world / "youcook2").is_dir():
        raise SystemExit(f"{world}: not a synthetic world root (run python -m vclip.synthetic --out {world})")
    out.mkdir(parents=True, exist_ok=True)
    data = open_pretrain(world / "pretrain")
    base = evaluate_baselines("youcook2", world)
    untrained = []
    for seed in args.seeds:
        torch.manual_seed(seed)
        untrained.append(evaluate_task(VideoCLIP.from_preset("tiny").eval(), "youcook2", world).metrics["R@1"])
    reference = {"chance": base["chance"].metrics["R@1"], "oracle": base["oracle"].metrics["R@1"] if "oracle" in base else None,
                 "untrained_mean": float(np.mean(untrained))}
    print(f"YouCook2-like text->video R@1 (%): chance {reference['chance']:.2f}, oracle {reference['oracle']}, "
          f"untrained tiny {reference['untrained_mean']:.2f} (N={base['chance'].n_evaluated})", flush=True)

    runs = []
    for condition in args.conditions:
        for seed in args.seeds:
            r = run_one(world, out, condition, seed, args.steps, data)
            runs.append(r)
            print(f"{condition:20s} seed {seed}: R@1 {r['R@1']:5.2f}  R@5 {r['R@5']:5.2f}  R@10 {r['R@10']:5.2f}  "
                  f"MedR {r['MedR']:4.0f}  val loss {r['final_val_loss']:.3f}  ({r['train_seconds']:.0f} s)", flush=True)
    print("\ncondition            R@1 mean +- std (min..max)   R@5 mean +- std   R@10 mean +- std")
    summary = {}
    for condition in args.conditions:
        rs = [r for r in runs if r["condition"] == condition]
        stats = {k: (float(np.mean([r[k] for r in rs])), float(np.std([r[k] for r in rs], ddof=1)) if len(rs) > 1 else 0.0)
                 for k in ("R@1", "R@5", "R@10")}
        summary[condition] = stats
        r1 = [r["R@1"] for r in rs]
        print(f"{condition:20s} {stats['R@1'][0]:5.2f} +- {stats['R@1'][1]:4.2f} ({min(r1):.2f}..{max(r1):.2f})"
              f"   {stats['R@5'][0]:5.2f} +- {stats['R@5'][1]:4.2f}   {stats['R@10'][0]:5.2f} +- {stats['R@10'][1]:4.2f}")
    (out / "ablations.json").write_text(json.dumps({"reference": reference, "runs": runs, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
