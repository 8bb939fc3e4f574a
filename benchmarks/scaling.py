"""How the kit's costs grow with the work: one table per program, measured points and the fitted growth.

    python benchmarks/scaling.py                   # encode, train, evaluate (one CPU thread, CPU clock), retrieval
    python benchmarks/scaling.py --only retrieval  # the retrieval table from benchmarks/results/retrieval.json

Programs and work sizes:

* encode: ``VideoCLIP.encode_video`` + ``encode_text`` (eval, ``torch.inference_mode``) against the
  batch size B (32-second videos, 63-token texts, as the reference pads them), presets tiny and minilm.
* train: one ``Trainer.train_step`` of the tiny preset against the group's V x C pairs (the real
  trainer over a feature store of the synthetic world; ``benchmarks/bench_train.py``).
* evaluate: ``vclip.tasks.evaluate_task(model, "msrvtt", folder)`` end to end (read, tokenise,
  encode, the N x N scores, both directions' metrics) against N text-video pairs, tiny preset
  (``benchmarks/bench_evaluate.py``'s folder of random features).
* retrieval: the epoch's retrieval step (index build + N/32 searches of k = 64) against the number of
  videos N, for exact search and the kit's ``index="auto"``, read from
  ``benchmarks/results/retrieval.json`` (``benchmarks/bench_retrieval.py``), not re-measured.

Each table's growth is the best of cost = a + b f(N) for f in N, N log N, N^2 (least squares,
a, b >= 0), with the log-log slope of the measured points. Writes ``--out``
(default ``benchmarks/results/scaling.json``) and prints the tables as Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # sibling benchmarks

PROGRAMS = ("encode", "train", "evaluate", "retrieval")
GROWTH = {"linear": lambda n: n, "N log N": lambda n: n * np.log(n), "quadratic": lambda n: n**2}


def fit_growth(sizes, costs) -> dict:
    """The law among GROWTH that fits cost = a + b f(size) best (relative error), and the log-log slope."""
    sizes, costs = np.asarray(sizes, float), np.asarray(costs, float)
    best = None
    for name, f in GROWTH.items():
        design = np.stack([np.ones_like(sizes), f(sizes)], axis=1) / costs[:, None]  # relative residuals
        coef, *_ = np.linalg.lstsq(design, np.ones_like(costs), rcond=None)
        if coef[0] < 0:  # no negative fixed cost: fit through the origin
            coef = np.array([0.0, np.sum(f(sizes) / costs) / np.sum((f(sizes) / costs) ** 2)])
        err = float(np.sqrt(np.mean((design @ coef - 1) ** 2)))
        if best is None or err < best["rel_error"]:
            best = {"growth": name, "fixed": float(coef[0]), "scale": float(coef[1]), "rel_error": err}
    best["loglog_slope"] = float(np.polyfit(np.log(sizes), np.log(costs), 1)[0])
    return best


def cpu_best(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def measure_encode(batches=(8, 16, 32, 64, 128), presets=("tiny", "minilm")) -> list[dict]:
    from vclip.model import VideoCLIP

    rows = []
    for preset in presets:
        torch.manual_seed(0)
        model = VideoCLIP.from_preset(preset).eval()
        c = model.config
        for b in batches:
            vfeats = torch.randn(b, c.max_video_len, c.video_feature_dim)
            vmask = torch.ones(b, c.max_video_len, dtype=torch.bool)
            ids = torch.randint(1000, 30000, (b, 63))
            ids[:, 0], ids[:, -1] = 101, 102
            mask = torch.ones(b, 63, dtype=torch.bool)
            def encode(model=model, vfeats=vfeats, vmask=vmask, ids=ids, mask=mask):
                return model.encode_video(vfeats, vmask), model.encode_text(ids, mask)

            with torch.inference_mode():
                s = cpu_best(encode, 2)
            rows.append({"series": preset, "size": b, "seconds": s})
            print(f"encode {preset:7s} B={b:4d}: {s * 1e3:8.1f} ms", flush=True)
    return rows


def measure_train(world: Path) -> list[dict]:
    import bench_train

    bench_train._now = time.process_time
    rows = []
    with tempfile.TemporaryDirectory(prefix="vclip-scaling-") as tmp:
        store = bench_train.build_world_store(world, Path(tmp) / "store")
        bench = bench_train.Bench(store, steps=3)
        for videos, clips in bench_train.SWEEP:
            r = bench.run("tiny", videos, clips)
            rows.append({"series": "tiny", "size": videos * clips, "group": f"{videos} x {clips}",
                         "seconds": r["step_s"], "data_seconds": r["data_ms"] / 1e3})
            print(f"train tiny {videos} x {clips}: {r['step_s'] * 1e3:8.1f} ms/step", flush=True)
    return rows


def measure_evaluate(sizes=(125, 250, 500, 1000, 2000)) -> list[dict]:
    from bench_evaluate import write_msrvtt_folder

    from vclip.model import VideoCLIP
    from vclip.tasks import EvalConfig, evaluate_task

    torch.manual_seed(0)
    model = VideoCLIP.from_preset("tiny").eval()
    config = EvalConfig(progress=False)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vclip-scaling-") as tmp:
        for n in sizes:
            folder = write_msrvtt_folder(Path(tmp) / f"msrvtt{n}", n)
            evaluate_task(model, "msrvtt", folder, config)  # warm-up (tokenizer, first reads)
            t0 = time.process_time()
            evaluate_task(model, "msrvtt", folder, config)
            s = time.process_time() - t0
            rows.append({"series": "tiny", "size": n, "seconds": s})
            print(f"evaluate msrvtt N={n:5d}: {s:6.2f} s", flush=True)
    return rows


def read_retrieval(path: Path) -> list[dict]:
    result = json.loads(path.read_text())
    rows = {}
    for r in result["runs"]:
        rows.setdefault(("exact search (faiss.knn)", r["n"]), {"series": "exact search (faiss.knn)", "size": r["n"],
                                                             "seconds": r["exact_s"]})
        if r["index"].startswith("auto"):
            rows[("auto", r["n"])] = {"series": "auto", "size": r["n"], "index": r["index"],
                                      "seconds": r["build_s"] + r["search_s"], "recall_at_64": r["recall_at_64"]}
    return sorted(rows.values(), key=lambda r: (r["series"], r["size"]))


def table(title: str, unit: str, rows: list[dict], command: str) -> tuple[str, list[dict]]:
    fits = []
    lines = [f"**{title}**: `{command}`", "", f"| series | {unit} | CPU seconds | fitted growth |", "| --- | --- | --- | --- |"]
    for series in dict.fromkeys(r["series"] for r in rows):
        rs = [r for r in rows if r["series"] == series]
        fit = fit_growth([r["size"] for r in rs], [r["seconds"] for r in rs]) if len(rs) >= 3 else None
        if fit:
            fits.append({"series": series, **fit})
        desc = (f"{fit['growth']} (+ {fit['fixed']:.3g} s fixed), log-log slope {fit['loglog_slope']:.2f}, "
                f"error {fit['rel_error']:.0%}") if fit else ""
        for i, r in enumerate(rs):
            size = r.get("group", f"{r['size']:,}")
            lines.append(f"| {series if i == 0 else ''} | {size} | {r['seconds']:.4g} | {desc if i == 0 else ''} |")
    return "\n".join(lines), fits


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=PROGRAMS, default=list(PROGRAMS))
    parser.add_argument("--world", type=Path, default=HERE.parent / "data" / "generated" / "synthetic")
    parser.add_argument("--retrieval", type=Path, default=HERE / "results" / "retrieval.json")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "scaling.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    command = "python benchmarks/scaling.py " + " ".join(sys.argv[1:] if argv is None else argv)
    saved = json.loads(args.out.read_text()) if args.out.is_file() else {}
    result = {"command": command, "threads": 1, "clock": "cpu", "tables": saved.get("tables", {})}
    measure = {"encode": measure_encode, "train": lambda: measure_train(args.world), "evaluate": measure_evaluate,
               "retrieval": lambda: read_retrieval(args.retrieval)}
    titles = {"encode": ("Encoding (both towers) against the batch", "batch B"),
              "train": ("A training update (tiny) against the group", "V x C"),
              "evaluate": ("MSR-VTT evaluation (tiny) against the pairs", "pairs N"),
              "retrieval": ("The epoch's retrieval step against the videos", "videos N")}
    for program in args.only:
        rows = measure[program]()
        text, fits = table(*titles[program], rows, command)
        result["tables"][program] = {"command": command, "rows": rows, "fits": fits, "markdown": text}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    for program in PROGRAMS:
        if program in result["tables"]:
            print("\n" + result["tables"][program]["markdown"])
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
