"""Wall time of zero-shot retrieval evaluation at MSR-VTT 1k-A size (1,000 text-video pairs).

Writes an MSR-VTT-layout folder of ``--pairs`` random L2-normalised float16 videos (10-30 s, like
MSR-VTT clips) with one sentence each (drawn from the synthetic world's phrases), then times
``vclip.tasks.evaluate_task(model, "msrvtt", folder)`` end to end: reading the CSV and the features,
tokenising, encoding every text and every video once in batches, the (N, N) score matrix and both
directions' metrics. Random initialisation (timing does not depend on the weights). Prints figures;
asserts nothing.

``--reads`` measures what one ``python -m vclip.evaluate`` call does per task (the model, chance and, on
a synthetic folder, the oracle): how many times each feature file is read from disk (``np.load`` calls
on ``features/*.npy``) and the wall time, on a small synthetic world (every task) and on the MSR-VTT-size
folder. Run at an older commit, the same script measures the older program (evaluate_task, then
evaluate_baselines), so the figures before and after a change come from one script.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_evaluate.py                    # paper preset, CPU
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_evaluate.py --presets tiny minilm paper --device cuda
    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_evaluate.py --reads --presets tiny
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from vclip.model import VideoCLIP  # noqa: E402
from vclip.tasks import EvalConfig, evaluate_task  # noqa: E402

SUBJECTS = ("a man", "a woman", "a chef", "a girl", "a person", "a boy")
ACTIONS = ("is chopping", "is stirring", "pours", "is washing", "fries", "is peeling", "serves", "is cutting")
OBJECTS = ("the onion", "some water", "the chicken", "a lemon", "the pasta", "some sauce", "the bread", "a carrot")
PLACES = ("in a kitchen", "at the counter", "on the stove", "in a bowl", "outside", "")


def write_msrvtt_folder(root: Path, pairs: int, seed: int = 0) -> Path:
    """An MSR-VTT 1k-A layout: ``MSRVTT_JSFUSION_test.csv`` + ``features/video<k>.npy`` (10-30 s, 512-d)."""
    rng = np.random.default_rng(seed)
    (root / "features").mkdir(parents=True, exist_ok=True)
    with open(root / "MSRVTT_JSFUSION_test.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "vid_key", "video_id", "sentence"])
        for k in range(pairs):
            sentence = " ".join(w for w in (rng.choice(SUBJECTS), rng.choice(ACTIONS), rng.choice(OBJECTS),
                                            rng.choice(PLACES)) if w)
            writer.writerow([f"ret{k}", f"msr{7000 + k}", f"video{7000 + k}", sentence])
            features = rng.standard_normal((int(rng.integers(10, 31)), 512)).astype(np.float32)
            features /= np.linalg.norm(features, axis=1, keepdims=True)
            np.save(root / "features" / f"video{7000 + k}.npy", features.astype(np.float16))
    return root


def program_results(model, task: str, folder: Path, config) -> dict:
    """What ``python -m vclip.evaluate --task TASK`` computes: the model's result and the baselines."""
    import vclip.tasks

    if hasattr(vclip.tasks, "evaluate_with_baselines"):  # one load shared by the three scorers
        return vclip.tasks.evaluate_with_baselines(model, task, folder, config)
    results = {"model": evaluate_task(model, task, folder, config)}  # the program before the registry
    results.update(vclip.tasks.evaluate_baselines(task, folder, config))
    return results


def count_reads(features_root: Path, function, *args) -> tuple[object, dict[str, int], float]:
    """Run ``function(*args)`` counting ``np.load`` calls per feature file under ``features_root``."""
    reads: dict[str, int] = {}
    real_load = np.load

    def counting_load(file, *args, **kwargs):
        path = Path(str(file))
        if path.suffix == ".npy" and path.parent.name == "features" and features_root in path.parents:
            reads[path.stem] = reads.get(path.stem, 0) + 1
        return real_load(file, *args, **kwargs)

    np.load = counting_load
    try:
        start = time.perf_counter()
        value = function(*args)
        seconds = time.perf_counter() - start
    finally:
        np.load = real_load
    return value, reads, seconds


def measure_reads(preset: str, device: str, tmp: Path, msrvtt: Path, config, out: Path | None) -> None:
    """Feature-file reads and wall time of the program's work per task (model + chance + oracle)."""
    from vclip.synthetic import WorldConfig, generate

    world = tmp / "world"
    generate(world, config=WorldConfig(pretrain_train=256, pretrain_val=0, pretrain_seconds=(20, 30),
                                       youcook_videos=6, msrvtt_clips=24, msrvtt_qa_items=12,
                                       crosstask_videos_per_primary=33, crosstask_val_per_primary=1,
                                       crosstask_videos_per_related=1, crosstask_seconds=(30, 60),
                                       coin_testing=12, coin_training=2, didemo_videos=8), seed=0)
    torch.manual_seed(0)
    model = VideoCLIP.from_preset(preset).to(device).eval()
    folders = [(task, world / task) for task in ("youcook2", "msrvtt", "msrvtt_qa", "didemo", "crosstask", "coin")]
    folders.append(("msrvtt", msrvtt))
    rows = []
    print(f"{'task':10} {'folder':14} {'scorers':22} {'files':>6} {'reads':>6} {'reads/file':>10} {'seconds':>8}")
    for task, folder in folders:
        results, reads, seconds = count_reads(folder, program_results, model, task, folder, config)
        files = len(reads)
        row = {"task": task, "folder": "small world" if folder.parent == world else f"{len(reads)} videos",
               "scorers": "+".join(results), "files": files, "reads": sum(reads.values()),
               "reads_per_file": round(sum(reads.values()) / max(1, files), 2), "seconds": round(seconds, 2)}
        rows.append(row)
        print(f"{task:10} {row['folder']:14} {row['scorers']:22} {files:6d} {row['reads']:6d} "
              f"{row['reads_per_file']:10.2f} {seconds:8.2f}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"preset": preset, "device": device, "rows": rows}, indent=1))
        print(f"saved {out}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["paper"])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=EvalConfig().batch_size)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per preset (the best is reported)")
    parser.add_argument("--reads", action="store_true",
                        help="count feature-file reads per task of the evaluation program (first preset) instead")
    parser.add_argument("--save", type=Path, default=None, help="with --reads: write the figures to this JSON file")
    args = parser.parse_args(argv)

    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""))
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_msrvtt_folder(Path(tmp) / "msrvtt", args.pairs)
        config = EvalConfig(batch_size=args.batch_size, progress=False)
        if args.reads:
            measure_reads(args.presets[0], args.device, Path(tmp), folder, config, args.save)
            return 0
        print(f"{'preset':8} {'params':>8} {'pairs':>6} {'batch':>6} {'seconds':>8} {'pairs/s':>8}")
        for preset in args.presets:
            torch.manual_seed(0)
            model = VideoCLIP.from_preset(preset).to(args.device).eval()
            params = sum(p.numel() for p in model.parameters())
            best = float("inf")
            for _ in range(args.repeats):
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                start = time.perf_counter()
                result = evaluate_task(model, "msrvtt", folder, config)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                best = min(best, time.perf_counter() - start)
            assert result.n_evaluated == args.pairs
            print(f"{preset:8} {params / 1e6:7.1f}M {args.pairs:6d} {args.batch_size:6d} {best:8.1f} "
                  f"{args.pairs / best:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
