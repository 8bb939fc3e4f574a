"""The training and encoding figures on a GPU: fp32, bf16 and fp16 autocast, torch.compile off and on.

Paper: VideoCLIP section 4.1 (pre-training in fp16 on 8 GPUs, 512 pairs per GPU per update). Reference:
``projects/retri/videoclip/how2.yaml`` (``fp16: true``, fairseq's loss scaling).

    python benchmarks/gpu.py                                  # writes benchmarks/results/gpu.json
    python benchmarks/gpu.py --presets tiny paper --steps 10 --batch 256

It reuses the two CPU benchmarks' code on the device: ``bench_train.Bench`` times
``Trainer.batch_for`` (the data path, on the host) and ``Trainer.train_step`` (the update with the
run's own ``--optimisation.precision``: autocast, and fp16 loss scaling), and ``bench_encode.bench_preset``
times ``encode_video`` / ``encode_text`` under the same autocast. Each is run for every precision and
with the model's forward under ``torch.compile`` off and on, with ``torch.cuda.synchronize`` around
every timing; ``bench_encode.MatmulPeak`` measures the device's square-matmul peak in each dtype,
which the table divides by. The result file names the GPU, its memory, torch and CUDA.

On a machine without a CUDA GPU it prints one line starting ``no GPU:`` and exits 0 without measuring
or writing anything (``--device cpu`` runs the same path on the CPU, to check the script itself).
The CUDA build of torch is needed on the GPU machine (``pip install torch==2.13.0`` from PyTorch's
CUDA index).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling benchmarks, whose functions this script reuses

PRECISIONS = ("fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
TRAIN_SHAPES = {"tiny": (32, 16), "minilm": (16, 16), "paper": (16, 32)}  # (videos, clips): 512 pairs for paper


def gpu_description(device: str) -> dict:
    import bench_encode

    if not device.startswith("cuda"):
        return {"name": f"CPU ({bench_encode.cpu_name()})", "memory_gib": None, "cuda": None}
    props = torch.cuda.get_device_properties(torch.device(device))
    return {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1), "cuda": torch.version.cuda,
            "capability": f"{props.major}.{props.minor}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "paper"], choices=sorted(TRAIN_SHAPES))
    parser.add_argument("--steps", type=int, default=5, help="timed updates per setting (after one warm-up)")
    parser.add_argument("--batch", type=int, default=128, help="videos / texts per encode call")
    parser.add_argument("--repeats", type=int, default=3, help="timed encode calls per setting (best is kept)")
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    parser.add_argument("--compile", nargs="+", default=["off", "on"], choices=["off", "on"], help="torch.compile")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu to check the script itself")
    parser.add_argument("--world", type=Path, default=HERE.parent / "data" / "generated" / "synthetic",
                        help="a synthetic world (make data) whose pre-training folder becomes the store")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "gpu.json")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"no GPU: torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False; "
              f"built for CUDA {torch.version.cuda or 'none'}); nothing measured, nothing written")
        return 0
    import bench_encode  # after the GPU check: the line above comes without loading the model code
    import bench_train

    if not (args.world / "pretrain").is_dir():
        parser.error(f"--world {args.world}: no pretrain/ folder (run `make data` to generate the synthetic world)")
    device = args.device
    gpu = gpu_description(device)
    command = "python benchmarks/gpu.py " + " ".join(sys.argv[1:] if argv is None else argv)
    result = {"command": command, "gpu": gpu, "torch": torch.__version__, "machine": platform.machine(),
              "device": device, "peaks_tflops": {}, "runs": []}
    print(f"{gpu['name']}, {gpu['memory_gib']} GiB, torch {torch.__version__}, CUDA {gpu['cuda']}", flush=True)
    peaks = {}
    for precision in args.precisions:
        if precision == "fp16" and not device.startswith("cuda"):
            print("fp16: skipped on the CPU (its loss scaling is CUDA's)")
            continue
        peak = bench_encode.MatmulPeak(4096 if device.startswith("cuda") else 1024, device, DTYPES[precision])
        peak.sample(5)
        peaks[precision] = peak
        result["peaks_tflops"][precision] = peak.best / 1e12
    print(f"{'what':7s} {'preset':7s} {'precision':9s} {'compile':7s} {'figure':>24s} {'TFLOP/s':>8s} {'of peak':>8s}")

    def record(row: dict, figure: str, flops_per_s: float) -> None:
        row["tflops"] = flops_per_s / 1e12
        row["fraction_of_peak"] = flops_per_s / peaks[row["precision"]].best
        result["runs"].append(row)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"{row['benchmark']:7s} {row['preset']:7s} {row['precision']:9s} {'on' if row['compile'] else 'off':7s} "
              f"{figure:>24s} {row['tflops']:8.2f} {row['fraction_of_peak']:8.1%}", flush=True)

    with tempfile.TemporaryDirectory(prefix="vclip-bench-gpu-") as tmp:
        store = bench_train.build_world_store(args.world, Path(tmp) / "store")
        for precision in peaks:
            for compiled in (c == "on" for c in args.compile):
                for preset in args.presets:
                    videos, clips = TRAIN_SHAPES[preset]
                    bench = bench_train.Bench(store, args.steps, compile_model=compiled, device=device,
                                              precision=precision)
                    row = {"benchmark": "train", **bench.run(preset, videos, clips)}
                    record(row, f"{row['pairs_per_s']:.0f} pairs/s ({row['pairs']}/step)",
                           row["gflop_per_step"] * 1e9 / row["step_s"])
                    row = {"benchmark": "encode", "batch": args.batch,
                           **bench_encode.bench_preset(preset, args.batch, 63, args.repeats, "sdpa", peaks[precision],
                                                       device=device, precision=precision, compile_model=compiled)}
                    record(row, f"{row['videos_per_s']:.0f} videos/s {row['texts_per_s']:.0f} texts/s",
                           (row["video_flops_per_s"] + row["text_flops_per_s"]) / 2)
    print("peaks (square torch.mm): " + ", ".join(f"{p} {v:.1f} TFLOP/s" for p, v in result["peaks_tflops"].items()))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
