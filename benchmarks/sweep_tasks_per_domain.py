"""When does retrieval augmentation help? The paper-vs-random-groups gap as the number of tasks grows.

Paper: VideoCLIP section 3.4 (retrieval-augmented training) and the ablation study (section 5).
Reference: ``mmpt/tasks/retritask.py``. HowTo100M has 23,611 tasks, so random groups almost never hold two
videos of one task and retrieval is what brings similar videos together; with few tasks, random groups
already do.

    python benchmarks/sweep_tasks_per_domain.py --tasks 5 20 --seeds 0 1 2 --default-result \
        benchmarks/results/ablations.json --out benchmarks/results/sweep_tasks_per_domain.json

For each value: generate a world with ``--tasks-per-domain N`` (seed 0, default preset) into
``--work``, run ``benchmarks/ablations.py`` there with the conditions ``paper`` and ``no_retrieval``
(reusing a finished ``ablations.json`` with the same seeds), and collect the summaries. The default
world (every task: 36 to 200 per domain) is taken from ``--default-result``, restricted to the same seeds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def markdown_table(record: dict) -> str:
    """The table docs/pretraining.md quotes: per point, the same-task share of random groups, the headline
    oracle, and paper R@1 with the paired no-retrieval difference on three views (checked by
    ``tests/test_docs_numbers.py``)."""
    lines = ["| tasks per domain | same task in random groups | headline oracle | headline: paper "
             "[no retrieval minus paper] | same step | MSR-VTT-like |", "| --- | --- | --- | --- | --- | --- |"]
    for point in record["points"]:
        random_groups = [r["group_same_task_percent"] for r in point["runs"]
                         if r["condition"] == "no_retrieval" and r["task"] == "youcook2"]
        cells = []
        for view in ("youcook2", "youcook2_same_step", "msrvtt"):
            paper, d = point["summary"][view]["paper"]["R@1"], point["summary"][view]["no_retrieval"]["R@1"]["minus_paper"]
            cells.append(f"{paper['mean']:.1f} [{d['mean']:+.1f}; {d['low']:+.1f}..{d['high']:+.1f}]")
        label = point["tasks_per_domain"] or "all (36-200)"
        lines.append(f"| {label} | {sum(random_groups) / len(random_groups):.2f}% | "
                     f"{point['reference']['baselines']['youcook2']['oracle']:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[5, 20], help="tasks per domain to try")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--work", default="runs/sweep_tasks_per_domain", help="worlds and run results go here")
    parser.add_argument("--default-result", default="benchmarks/results/ablations.json",
                        help="ablations.json of the default world (all tasks)")
    parser.add_argument("--out", default="runs/sweep_tasks_per_domain.json")
    parser.add_argument("--table", metavar="RESULT_JSON", default=None,
                        help="print the markdown table of a saved result (the one docs/pretraining.md quotes) and exit")
    args = parser.parse_args(argv)
    if args.table:
        print(markdown_table(json.loads(Path(args.table).read_text())))
        return 0

    sys.path.insert(0, str(HERE))
    from ablations import summarise

    work = Path(args.work)
    points = []
    for n in args.tasks:
        world, result = work / f"world_t{n}", work / f"t{n}"
        done = result / "ablations.json"
        if not (done.is_file() and json.loads(done.read_text())["settings"]["seeds"] == args.seeds
                and len(json.loads(done.read_text())["runs"]) >= 8 * len(args.seeds)):
            if not (world / "WORLD.json").is_file():
                subprocess.run([sys.executable, "-m", "vclip.synthetic", "--out", str(world),
                                "--tasks-per-domain", str(n)], check=True)
            subprocess.run([sys.executable, str(HERE / "ablations.py"), "--world", str(world), "--seeds",
                            *map(str, args.seeds), "--jobs", str(args.jobs), "--conditions", "paper", "no_retrieval",
                            "--out", str(result)], check=True)
        data = json.loads(done.read_text())
        points.append({"tasks_per_domain": n, "reference": data["reference"], "summary": data["summary"],
                       "runs": data["runs"]})
    default = json.loads(Path(args.default_result).read_text())
    runs = [r for r in default["runs"] if r["seed"] in args.seeds and r["condition"] in ("paper", "no_retrieval")]
    points.append({"tasks_per_domain": None, "reference": default["reference"],
                   "summary": summarise(runs, ["paper", "no_retrieval"]), "runs": runs})
    record = {"knob": "tasks_per_domain (None: every task, 36-200 per domain)", "seeds": args.seeds,
              "command": (f"python benchmarks/sweep_tasks_per_domain.py --tasks {' '.join(map(str, args.tasks))} "
                          f"--seeds {' '.join(map(str, args.seeds))} --default-result {args.default_result}"),
              "points": points}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1))
    for point in points:
        s = point["summary"]
        label = point["tasks_per_domain"] or "all"
        for view in ("youcook2", "youcook2_same_step", "msrvtt"):
            d = s[view]["no_retrieval"]["R@1"]["minus_paper"]
            print(f"tasks per domain {label!s:>4} {view:<20} paper {s[view]['paper']['R@1']['mean']:5.1f}  "
                  f"no_retrieval minus paper {d['mean']:+5.1f} [{d['low']:+5.1f}, {d['high']:+5.1f}]")
    print("\n" + markdown_table(record))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
