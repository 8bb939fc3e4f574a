"""How fast the knob widgets answer a move, and how long the embedding map takes, on the tiny model on a CPU.

    python benchmarks/bench_knobs.py [--data data/generated/synthetic] [--threads 1] [--map]

Builds :class:`vclip.knobs.KnobExplorer` for the untrained tiny model (its video vectors once), then moves one
knob at a time as a student would (``update``: the view recomputed and the figure redrawn into the Output
widget) and prints each move's wall and CPU time (CPU time: what the move costs on idle cores, whatever else the
machine runs). A move that needs clip pairs not yet encoded (a larger B, another V
or k) runs the model on them; a temperature move and a revisited setting run no model at all. With ``--map``
it also times :func:`vclip.embedding_map.embedding_map` (vectors and t-SNE) for the same model.
"""

from __future__ import annotations

import argparse
import time

MOVES = [
    {"temperature": 0.1},
    {"temperature": 1.0},
    {"group_size": 16},
    {"group_size": 128},
    {"videos_per_group": 16},
    {"num_candidates": 16},
    {"num_candidates": 256},
    {"normalize": True, "temperature": 0.05},
    {"group_size": 64, "videos_per_group": 8, "num_candidates": 64, "temperature": 1.0, "normalize": False},
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="data/generated/synthetic", help="a synthetic world (its root)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the notebooks use 1)")
    parser.add_argument("--map", action="store_true", help="also time the embedding map")
    args = parser.parse_args(argv)

    import matplotlib
    import torch

    matplotlib.use("Agg")
    from vclip.knobs import KnobExplorer, KnobWorld
    from vclip.model import VideoCLIP

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    world = KnobWorld.load(args.data)
    print(f"world loaded: {len(world.video_ids)} training videos ({time.perf_counter() - start:.1f} s)")
    torch.manual_seed(0)
    model = VideoCLIP.from_preset("tiny").eval()
    start = time.perf_counter()
    explorer = KnobExplorer(world, model, seed=0)
    print(f"explorer built (video vectors + the first view): {time.perf_counter() - start:.1f} s")
    times, cpu = [], []
    for move in MOVES:
        start, start_cpu = time.perf_counter(), time.process_time()
        view = explorer.update(**move)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        print(f"{times[-1]:6.2f} s wall, {cpu[-1]:5.2f} s CPU  {move}  -> B {view.group_size} = {view.videos_per_group} x {view.clips_per_video}, "
              f"k {view.num_candidates}, tau {view.temperature:g}")
    for name, values in (("wall", times), ("CPU", cpu)):
        ordered = sorted(values)
        print(f"per move, {name}: median {ordered[len(ordered) // 2]:.2f} s, max {ordered[-1]:.2f} s over {len(values)} moves")
    if args.map:
        from vclip.embedding_map import embedding_map

        for method in ("tsne", "pca"):
            start = time.perf_counter()
            embedding_map(world, model, seed=0, method=method)
            print(f"embedding map ({method}, vectors included): {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        embedding_map(world, model, seed=0, vectors=explorer.vectors)
        print(f"embedding map (tsne, vectors given): {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
