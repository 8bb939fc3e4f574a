"""Training cost: the update's share of a measured matmul peak, the data path's share of a step, a profile.

Paper: VideoCLIP section 4.1 (512 pairs per GPU per update). Reference: ``how2.yaml``.

    python benchmarks/bench_train.py --threads 1 --clock cpu            # writes benchmarks/results/train.json
    python benchmarks/bench_train.py --presets tiny --profile --compile --threads 1 --clock cpu

What one training step of ``vclip.training.trainer.Trainer`` costs, on the path training runs:

* **Data path** (``data_ms``, ``data_clips_per_s``): ``Trainer.batch_for``, which is what the training
  loop calls before each update, in the training process (the kit uses no DataLoader workers):
  the overlapped clip sampler, the feature store (:class:`vclip.data.FeatureStore`, memory-mapped
  shards, built by :func:`vclip.data.build_store` from the synthetic world's pre-training folder),
  the captions' token ids (tokenised once, when the store is built), collation and the host-side
  checks. ``data_share`` is its time over data + update.
* **Update** (``step_s``): ``Trainer.train_step`` (forward, loss, backward, clipping, Adam, schedule).
  Achieved FLOP/s counts the towers' matrix products (``vclip.model.count_matmul_flops``, forward x 3
  for forward + backward) over the padded shapes actually computed; ``fraction_of_peak`` divides it
  by the best of several float32 ``torch.mm`` of 2048 x 2048, measured in the same run on the same
  threads and clock. ``shape_peak_fraction`` is what a bare ``torch.mm`` of the model's own largest
  projection (pairs x 34 positions by hidden, times hidden by FFN) reaches against that peak: the
  ceiling small matrices put on the whole step.
* ``--sweep``: the teaching preset at several group sizes (the cost of a step against V x C pairs).
* ``--profile``: ``torch.profiler`` of the teaching step, the operators that take its time.
* ``--compile``: the same update with the model's forward under ``torch.compile``.

With ``--clock cpu --threads 1`` every time is one thread's CPU seconds, robust on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

SHAPES = {"tiny": [(8, 8), (32, 16)], "minilm": [(8, 8)], "paper": [(4, 4)]}  # (videos, clips) per group
TEACHING = ("tiny", 8, 8)  # the notebooks' and the ablations' setting
SWEEP = [(2, 8), (4, 8), (8, 8), (16, 8), (32, 8), (32, 16)]
CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
_now = time.perf_counter


def matmul_peak(m: int = 2048, k: int = 2048, n: int = 2048, repeats: int = 10) -> float:
    """Best FLOP/s of a float32 (m, k) @ (k, n) over ``repeats`` products."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    torch.mm(a, b)
    inner = max(1, int(2e9 // (2 * m * k * n)))  # at least ~2 GFLOP per timing: clock resolution
    best = 0.0
    for _ in range(repeats):
        t0 = _now()
        for _ in range(inner):
            torch.mm(a, b)
        best = max(best, inner * 2 * m * k * n / max(_now() - t0, 1e-9))
    return best


def build_world_store(world: Path, out: Path) -> Path:
    """A feature store of the world's pre-training folder (the layout a HowTo100M run trains from)."""
    from vclip.data.store import build_store

    build_store(world / "pretrain", out, progress=False)
    return out


class Bench:
    """One Trainer per (preset, videos, clips) over the store; times its data path and its update.

    ``device`` and ``precision`` are the run's (``--device``, ``--optimisation.precision``: the update's own
    autocast and loss scaling); on a GPU every timing waits for the device (``torch.cuda.synchronize``).
    """

    def __init__(self, store_path: Path, steps: int, compile_model: bool = False, device: str = "cpu",
                 precision: str = "fp32"):
        self.store_path, self.steps, self.compile = store_path, steps, compile_model
        self.device, self.precision = device, precision

    def sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def trainer(self, preset: str, videos: int, clips: int, tmp: str):
        from vclip.config import PretrainConfig
        from vclip.training.trainer import Trainer

        cfg = PretrainConfig(data=str(self.store_path), output=tmp, preset=preset, videos_per_group=videos,
                             clips_per_video=clips, retrieval=False, progress=False, device=self.device,
                             precision=self.precision, steps=self.steps + 1)
        trainer = Trainer(cfg)
        if self.compile:
            # dynamic: the text length changes from batch to batch (padded to the longest), so no recompile each
            trainer.model.forward = torch.compile(trainer.model.forward, dynamic=True)
        return trainer

    def run(self, preset: str, videos: int, clips: int, profile: bool = False) -> dict:
        from vclip.model import count_matmul_flops

        with tempfile.TemporaryDirectory() as tmp:
            trainer = self.trainer(preset, videos, clips, tmp)
            groups = trainer.plan_epoch(0)[0]
            n = self.steps + 1
            t0 = _now()
            batches = [trainer.batch_for(0, i, groups[i % len(groups)]) for i in range(n)]
            data_s = (_now() - t0) / n
            t0, wall0 = _now(), time.perf_counter()
            trainer.train_step(batches[0])  # warm-up (and, under --compile, the compilation)
            self.sync()
            first_s, first_wall_s = _now() - t0, time.perf_counter() - wall0  # compilation runs in worker processes
            t0 = _now()
            for b in batches[1:]:
                trainer.train_step(b)
            self.sync()
            step_s = (_now() - t0) / self.steps
            table = None
            if profile:
                table = profile_steps(trainer, batches[1:])
            pairs = videos * clips
            text_len = int(np.mean([b.input_ids.shape[1] for b in batches[1:]]))
            flops = 3 * count_matmul_flops(trainer.model.config, video_batch=pairs, text_batch=pairs, text_len=text_len)
            config = trainer.model.config
        out = {"preset": preset, "videos": videos, "clips": clips, "pairs": pairs, "compile": self.compile,
               "device": self.device, "precision": self.precision,
               "step_s": step_s, "first_step_s": first_s, "first_step_wall_s": first_wall_s, "pairs_per_s": pairs / step_s, "gflop_per_step": flops / 1e9,
               "data_ms": data_s * 1e3, "data_clips_per_s": pairs / data_s, "data_share": data_s / (data_s + step_s),
               "params_m": trainer.model.num_parameters() / 1e6,
               "largest_projection": [pairs * (config.max_video_len + 2), config.hidden_size, config.intermediate_size]}
        if table is not None:
            out["profile"] = table
        return out


def profile_steps(trainer, batches, top: int = 15) -> list[dict]:
    """The operators taking a few updates' time (self CPU time, torch.profiler), largest first."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for b in batches:
            trainer.train_step(b)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: -e.self_cpu_time_total)
    return [{"op": e.key, "calls": e.count, "self_ms_per_step": e.self_cpu_time_total / 1e3 / len(batches),
             "share": e.self_cpu_time_total / total} for e in events[:top]]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "minilm", "paper"], choices=sorted(SHAPES))
    parser.add_argument("--steps", type=int, default=5, help="timed updates per shape (paper: half)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    parser.add_argument("--clock", choices=sorted(CLOCK), default="wall",
                        help="wall: elapsed seconds; cpu: the process's CPU seconds (with --threads 1 on a shared machine)")
    parser.add_argument("--world", type=Path, default=ROOT / "data" / "generated" / "synthetic",
                        help="a synthetic world (make data) whose pre-training folder becomes the store")
    parser.add_argument("--sweep", action="store_true", help="also the teaching preset at several group sizes")
    parser.add_argument("--profile", action="store_true", help="torch.profiler of the teaching step")
    parser.add_argument("--compile", action="store_true", help="also the teaching step under torch.compile")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "train.json")
    args = parser.parse_args(argv)
    if not (args.world / "pretrain").is_dir():
        parser.error(f"--world {args.world}: no pretrain/ folder (run `make data` to generate the synthetic world)")
    global _now
    _now = CLOCK[args.clock]
    torch.set_num_threads(args.threads)
    peak = matmul_peak()
    command = "python benchmarks/bench_train.py " + " ".join(sys.argv[1:] if argv is None else argv)
    result = {"command": command, "torch": torch.__version__, "threads": args.threads, "clock": args.clock,
              "machine": platform.processor() or platform.machine(), "gpu": None,
              "matmul_peak_gflops": peak / 1e9, "runs": []}
    print(f"torch {torch.__version__}, {args.threads} threads, {args.clock} clock; "
          f"float32 matmul peak (2048^3): {peak / 1e9:.1f} GFLOP/s; no GPU on this machine", flush=True)
    print(f"{'preset':7s} {'V x C':>7s} {'compile':>7s} {'params':>7s} {'s/step':>8s} {'pairs/s':>8s} {'GFLOP/s':>8s} "
          f"{'of peak':>8s} {'shape ceiling':>13s} {'data ms':>8s} {'data clips/s':>12s} {'data share':>10s}")
    shape_peaks: dict[tuple, float] = {}
    peaks = [peak]  # re-sampled next to every workload; the best sample is the peak (load only slows)

    def record(r: dict) -> None:
        key = tuple(r["largest_projection"])
        shape_peaks[key] = max(shape_peaks.get(key, 0.0), matmul_peak(*key, repeats=5))
        peaks.append(matmul_peak(repeats=5))
        best = max(peaks)
        r["gflops"] = r["gflop_per_step"] / r["step_s"]
        result["runs"].append(r)
        result["matmul_peak_gflops"] = best / 1e9
        for run in result["runs"]:  # every run against the best peak seen so far
            run["fraction_of_peak"] = run["gflops"] * 1e9 / best
            run["shape_peak_fraction"] = shape_peaks[tuple(run["largest_projection"])] / best
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"{r['preset']:7s} {r['videos']:>3d} x {r['clips']:<3d} {'yes' if r['compile'] else 'no':>7s} "
              f"{r['params_m']:6.1f}M {r['step_s']:8.3f} {r['pairs_per_s']:8.1f} {r['gflops']:8.1f} "
              f"{r['fraction_of_peak']:8.1%} {r['shape_peak_fraction']:13.1%} {r['data_ms']:8.1f} "
              f"{r['data_clips_per_s']:12.0f} {r['data_share']:10.1%}", flush=True)

    with tempfile.TemporaryDirectory(prefix="vclip-bench-train-") as tmp:
        store = build_world_store(args.world, Path(tmp) / "store")
        eager = Bench(store, args.steps)
        for preset in args.presets:
            for videos, clips in SHAPES[preset]:
                steps = args.steps if preset != "paper" else max(2, args.steps // 2)
                bench = Bench(store, steps)
                record(bench.run(preset, videos, clips, profile=args.profile and (preset, videos, clips) == TEACHING))
        if args.sweep:
            for videos, clips in SWEEP:
                if (videos, clips) not in SHAPES["tiny"] or "tiny" not in args.presets:
                    r = eager.run("tiny", videos, clips)
                    r["sweep"] = True
                    record(r)
        if args.compile:
            record(Bench(store, args.steps, compile_model=True).run(*TEACHING))
    if args.profile:
        teaching = next((r for r in result["runs"] if "profile" in r), None)
        if teaching:
            print("\nwhere the teaching step's time goes (torch.profiler, self CPU time per update):")
            for e in teaching["profile"]:
                print(f"  {e['op']:40s} {e['calls']:6d} calls {e['self_ms_per_step']:8.2f} ms  {e['share']:6.1%}")
    print(f"\nfloat32 matmul peak, best of {len(peaks)} samples: {max(peaks) / 1e9:.1f} GFLOP/s; the table's fractions "
          f"are against it in {args.out}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
