"""The six zero-shot tasks on the synthetic world: the untrained model against the notebooks' teaching run.

    python benchmarks/zero_shot.py --world data/generated/synthetic --out benchmarks/results
    python benchmarks/zero_shot.py --table benchmarks/results/zero_shot.json      # README/docs table

The pre-trained model is the run chapters 04, 06, 07 and 08 share (``vclip.notebooks.teaching_run``: tiny
preset, 128 updates, seed 0, in ``<work-dir>/runs/tiny-steps128-seed0``); it is reused when chapter 04 made
it and trained otherwise (about a minute on 2 cores). The untrained model is what
``python -m vclip.evaluate --task all --untrained tiny`` scores (random initialisation, seed 0). Both are
scored by :func:`vclip.tasks.evaluate_all`, as ``python -m vclip.evaluate --task all`` does, with the
chance and oracle baselines of each task. Paper: VideoCLIP (Xu et al., EMNLP 2021) section 4; the
paper's numbers (on the real datasets) come from each task's registry entry in :mod:`vclip.tasks`.

The result (``zero_shot.json``) holds every metric of every scorer; ``--table`` prints the markdown table
README.md and docs/evaluation.md quote (``tests/test_docs_numbers.py`` checks that they do).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# (task, metric) rows of the table: each task's headline metric, and COIN without background seconds
ROWS = (("youcook2", "R@1"), ("msrvtt", "R@1"), ("msrvtt_qa", "accuracy"), ("didemo", "rank@1"),
        ("crosstask", "recall"), ("coin", "frame_acc"), ("coin", "frame_acc_no_bg"))


def _cell(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def markdown_table(payload: dict) -> str:
    """untrained, pre-trained, chance, oracle and the paper's zero-shot number, one row per (task, metric)."""
    from vclip.tasks import TASKS

    results = payload["results"]
    lines = ["| task | metric | untrained | pre-trained | chance | oracle | paper (real data) | N |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for task, metric in ROWS:
        if task not in results["pretrained"]:
            continue
        number = TASKS[task].paper_number(metric)
        cells = [_cell(results[scorer][task]["metrics"].get(metric)) if task in results[scorer] else "-"
                 for scorer in ("untrained", "pretrained", "chance", "oracle")]
        lines.append(f"| {task} | {metric} | " + " | ".join(cells)
                     + f" | {number.format() if number else '-'} | {results['pretrained'][task]['n_evaluated']} |")
    return "\n".join(lines)


def _scored(result) -> dict:
    return {"metrics": result.metrics, "n_evaluated": result.n_evaluated,
            "n_missing_features": result.n_missing_features, "details": {
                k: v for k, v in result.details.items() if k == "video_to_text"}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="data/generated/synthetic", help="a synthetic world root")
    parser.add_argument("--work-dir", default="runs/notebooks", help="the notebooks' working folder")
    parser.add_argument("--steps", type=int, default=128, help="updates of the teaching run (chapter 04's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/zero_shot", help="folder for zero_shot.json")
    parser.add_argument("--table", metavar="RESULT_JSON", default=None,
                        help="print the markdown table of a saved result and exit")
    args = parser.parse_args(argv)
    if args.table:
        print(markdown_table(json.loads(Path(args.table).read_text())))
        return 0

    import torch

    from vclip.checkpoint import load_model
    from vclip.model import VideoCLIP
    from vclip.notebooks import setup_notebook, teaching_run
    from vclip.tasks import EvalConfig, evaluate_all

    world = Path(args.world)
    if not (world / "WORLD.json").is_file():
        print(f"error: {world}: not a synthetic world root (run python -m vclip.synthetic --out {world})")
        return 2
    setup_notebook(seed=args.seed)  # the notebooks' thread count and determinism, so the run is theirs
    name = f"tiny-steps{args.steps}-seed{args.seed}"
    run_dir = teaching_run(world, args.work_dir, name=name, preset="tiny", steps=args.steps, seed=args.seed)
    config = EvalConfig(progress=False)
    pretrained = evaluate_all(load_model(run_dir).eval(), world, config=config)
    torch.manual_seed(args.seed)  # as python -m vclip.evaluate --untrained tiny --seed S
    untrained = evaluate_all(VideoCLIP.from_preset("tiny").eval(), world, config=config)
    results = {"untrained": {t: _scored(r["model"]) for t, r in untrained.items()},
               "pretrained": {t: _scored(r["model"]) for t, r in pretrained.items()},
               "chance": {t: _scored(r["chance"]) for t, r in pretrained.items() if "chance" in r},
               "oracle": {t: _scored(r["oracle"]) for t, r in pretrained.items() if "oracle" in r}}
    world_record = json.loads((world / "WORLD.json").read_text())
    payload = {"settings": {"world": str(world), "run": name, "preset": "tiny", "steps": args.steps,
                            "seed": args.seed, "world_preset": world_record.get("preset"), "world_seed": world_record.get("seed")},
               "results": results}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "zero_shot.json").write_text(json.dumps(payload, indent=1, default=float))
    print(markdown_table(payload))
    print(f"\nwritten {out / 'zero_shot.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
