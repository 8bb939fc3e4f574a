"""Cost of retrieval augmentation: embedding pass, index build, search; extrapolated to HowTo100M.

Paper: VideoCLIP section 3.4 (retrieval-augmented training). Reference: ``mmpt/tasks/retritask.py``,
``mmpt/modules/retri.py`` (IVF512, nprobe 1, one index per GPU over 1/8 of 1.2M videos).

    python benchmarks/bench_retrieval.py [--sizes 10000 100000] [--presets tiny minilm paper]

* Embedding pass: ``vclip.retrieval.video_vectors`` on random videos (16 aligned clips each, like the
  reference), timed per video for each preset, with its FLOP count (so the figure can be rescaled to
  any accelerator's throughput).
* Index and search: random 768-d vectors (the paper's hidden size) for each N, with the index the
  trainer would choose (``index="auto"``: exact up to 50k, IVF round(4 sqrt N) lists above) and, for
  comparison, the other kind; N/32 queries of k = 64.
* Extrapolation to HowTo100M's 1.2M videos, per rank with 8 ranks (150k videos each, the reference's
  layout) and with one global index, from the measured per-unit costs (flat search ~ queries x N;
  IVF training ~ N x nlist; embedding ~ videos).
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HOWTO100M = 1_200_000
V, K, CLIPS = 32, 64, 16


def random_store(n_videos: int, seed: int = 0):
    from vclip.sampling import ArrayVideos

    rng = np.random.default_rng(seed)
    videos = {}
    for i in range(n_videos):
        t = int(rng.integers(100, 200))
        starts = np.sort(rng.uniform(0, t, 20))
        videos[f"v{i}"] = (
            rng.standard_normal((t, 512)).astype(np.float32),
            starts,
            starts + rng.uniform(2, 6, 20),
            [list(rng.integers(1000, 29000, int(rng.integers(4, 16)))) for _ in range(20)],
        )
    return ArrayVideos(videos)


def time_embedding(preset: str, n_videos: int) -> dict:
    from vclip.model import VideoCLIP, count_matmul_flops
    from vclip.retrieval import video_vectors

    torch.manual_seed(0)
    model = VideoCLIP.from_preset(preset)
    store = random_store(n_videos)
    video_vectors(model, store, store.video_ids[:1], CLIPS, np.random.default_rng(0), progress=False)  # warm-up
    t0 = time.perf_counter()
    video_vectors(model, store, store.video_ids, CLIPS, np.random.default_rng(0), videos_per_batch=8, progress=False)
    per_video = (time.perf_counter() - t0) / n_videos
    # text clips are ~40 wordpieces + [CLS]/[SEP] on average here; count 63 (the padded maximum) as an upper bound
    flops = count_matmul_flops(model.config, video_batch=CLIPS, text_batch=CLIPS, text_len=63)
    return {"preset": preset, "seconds_per_video": per_video, "gflop_per_video": flops / 1e9}


def time_index(n: int, kind: str, dim: int = 768, seed: int = 0) -> dict:
    from vclip.retrieval import build_index

    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    t0 = time.perf_counter()
    index, desc = build_index(vecs, kind, seed=seed)
    build = time.perf_counter() - t0
    queries = vecs[rng.choice(n, n // V, replace=False)]
    t0 = time.perf_counter()
    index.search(queries, K)
    search = time.perf_counter() - t0
    return {"n": n, "index": desc, "nlist": getattr(index, "nlist", 0), "build_s": build, "search_s": search}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--presets", nargs="+", default=["tiny", "minilm", "paper"])
    parser.add_argument("--embed-videos", type=int, default=16, help="videos timed per preset (paper: a quarter)")
    args = parser.parse_args(argv)
    print(f"torch threads: {torch.get_num_threads()}")

    print("\n## Embedding pass (16 aligned clips per video, CPU, float32)")
    embeds = []
    for preset in args.presets:
        n = max(2, args.embed_videos // 4) if preset == "paper" else args.embed_videos
        r = time_embedding(preset, n)
        embeds.append(r)
        print(f"{preset:7s} {r['seconds_per_video'] * 1e3:9.1f} ms/video  {r['gflop_per_video']:8.1f} GFLOP/video  "
              f"-> 10k: {r['seconds_per_video'] * 1e4 / 60:7.1f} min, 100k: {r['seconds_per_video'] * 1e5 / 3600:6.2f} h")

    print("\n## Index build and search (random 768-d vectors, N/32 queries, k=64)")
    rows = []
    for n in args.sizes:
        for kind in ("flat", "ivf"):
            r = time_index(n, kind)
            rows.append(r)
            print(f"N={n:>7}  {r['index']:>16s}  build {r['build_s']:7.2f} s  search {r['search_s']:7.2f} s")

    print(f"\n## Extrapolation to HowTo100M ({HOWTO100M:,} videos)")
    big = max(args.sizes)
    flat = next(r for r in rows if r["n"] == big and r["index"] == "flat")
    ivf = next(r for r in rows if r["n"] == big and r["index"].startswith("ivf"))
    for label, n in (("per rank, 8 ranks (reference)", HOWTO100M // 8), ("one global index", HOWTO100M)):
        scale_q = (n / big) ** 2  # flat search: (N/32 queries) x N
        nlist = round(4 * math.sqrt(n))
        ivf_build = ivf["build_s"] * (n / big) * (nlist / ivf["nlist"])  # k-means ~ N x nlist
        ivf_search = ivf["search_s"] * (n / big) * (ivf["nlist"] / nlist) * (n / big)  # queries x list size
        print(f"{label:32s} N={n:>9,}: flat search {flat['search_s'] * scale_q / 60:8.1f} min | "
              f"ivf{nlist} build {ivf_build / 60:6.1f} min, search {ivf_search:6.1f} s")
    for r in embeds:
        print(f"embedding pass, {r['preset']:7s}: {r['seconds_per_video'] * HOWTO100M / 3600:9.1f} CPU-hours "
              f"for 1.2M videos ({r['gflop_per_video'] * HOWTO100M / 1e6:.1f} PFLOP)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
