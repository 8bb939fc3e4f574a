"""Cost of retrieval augmentation at HowTo100M scale: index build, the epoch's searches, memory, recall.

Paper: VideoCLIP section 3.4 (retrieval-augmented training). Reference: ``mmpt/tasks/retritask.py``
(floor(N/32) query videos per epoch, k = 64 neighbours each) and ``mmpt/modules/retri.py`` (faiss
``IndexIVFFlat``, 512 lists, nprobe 1, one index per GPU over that GPU's 1/8 of the videos).

    python benchmarks/bench_retrieval.py                       # N = 10k, 100k, 1.2M (about 25 min on 2 cores)
    python benchmarks/bench_retrieval.py --sizes 10000 100000 --out runs/retrieval.json
    python benchmarks/bench_retrieval.py --embed               # also time the embedding pass per preset
    python benchmarks/bench_retrieval.py --plot benchmarks/results/retrieval.json --figure docs/retrieval_scaling.png

What one epoch's retrieval step costs, measured (not extrapolated) for each N:

* Vectors: 768-d (the paper's hidden size) with the cluster structure of instructional-video
  embeddings: a hierarchical Gaussian mixture of 12 domains (HowTo100M's top-level categories), one
  task per 51 videos (HowTo100M: 23,611 tasks over 1.22M videos), and per-video noise, on a decaying
  spectrum (per-dimension scale i^-1/4) as real embeddings have. The printed ``same-task share of the
  exact 64 neighbours`` characterises the structure.
* Queries: floor(N/32) random videos, k = 64 (what ``vclip.retrieval.retrieval_groups`` issues per
  epoch with the paper's 32 videos per group).
* ``exact_s``: an exact search (``faiss.knn``, BLAS) of a random sample of the queries, timed and
  scaled by the number of queries; it is also the ground truth for ``recall_at_64`` (the share of
  the exact 64 neighbours that the index returns; for the per-rank configuration the exact answer
  is taken inside the rank's share, which is all the reference can return).
* Each configuration runs in its own process over the same memory-mapped vectors, so
  ``peak_rss_mb`` is that configuration's peak (vectors included).

Configurations, side by side in one run: the reference's IVF512 nprobe 1 per rank (8 ranks of N/8,
times summed: the work of one machine; each GPU does 1/8 of it), IVF512 nprobe 1 over one global
index, the kit's ``index="auto"`` choice (:func:`vclip.retrieval.build_index`), and a grid of
larger IVF indexes trained on a subsample with several nprobe values, plus HNSW up to 100k.

Writes ``--out`` (default ``benchmarks/results/retrieval.json``): a list ``runs`` of objects with
``n``, ``index``, ``build_s``, ``search_s``, ``exact_s``, ``peak_rss_mb``, ``recall_at_64``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HOWTO100M = 1_200_000
DIM, K, V = 768, 64, 32
VIDEOS_PER_TASK = 51  # HowTo100M: 1.22M videos / 23,611 tasks
DOMAINS = 12
RANKS = 8  # the reference's 8 GPUs, one index each
EXACT_MAX = 50_000  # vclip.retrieval.build_index: exact search up to this many videos
REFERENCE = ("ivf512-per-rank", "ivf512")
SCALE_DOMAIN, SCALE_TASK, SCALE_VIDEO = 1.0, 0.6, 0.45
HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------- vectors
def write_vectors(path: Path, n: int, seed: int = 0, chunk: int = 100_000) -> np.ndarray:
    """Write (n, 768) float32 clustered vectors to ``path`` (.npy); return each video's task id."""
    rng = np.random.default_rng(seed)
    spectrum = (np.arange(1, DIM + 1, dtype=np.float32) ** -0.25)
    spectrum /= np.sqrt(np.mean(spectrum**2))
    n_tasks = max(DOMAINS, round(n / VIDEOS_PER_TASK))
    domains = rng.standard_normal((DOMAINS, DIM), dtype=np.float32) * SCALE_DOMAIN
    task_domain = rng.integers(0, DOMAINS, n_tasks)
    tasks = domains[task_domain] + rng.standard_normal((n_tasks, DIM), dtype=np.float32) * SCALE_TASK
    video_task = rng.integers(0, n_tasks, n)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, DIM))
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        noise = rng.standard_normal((hi - lo, DIM), dtype=np.float32) * SCALE_VIDEO
        out[lo:hi] = (tasks[video_task[lo:hi]] + noise) * spectrum
    out.flush()
    del out
    return video_task


def rank_shares(n: int, seed: int = 0) -> list[np.ndarray]:
    """The reference's split of the videos among 8 ranks: one random permutation, cut in 8."""
    perm = np.random.default_rng(seed + 1).permutation(n)
    return [np.sort(s) for s in np.array_split(perm, RANKS)]


# ----------------------------------------------------------------------------- workers
CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
_now = time.perf_counter


def _use_clock(name: str) -> None:
    """Time with wall-clock seconds, or with this process's CPU seconds (robust on a shared machine)."""
    global _now
    _now = CLOCK[name]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _build(kind: str, vectors: np.ndarray, seed: int):
    """(index, description) for one configuration name of :func:`configurations`.

    "auto" and "ivf512" go through :func:`vclip.retrieval.build_index` (what the trainer runs);
    "ivfL/hnsw/trainP" is an IVF with L lists whose k-means runs 10 iterations on P vectors per list
    and whose coarse quantizer is an HNSW graph over the centroids (so adding N vectors costs
    N log L rather than N x L distance computations); "ivfL" (no suffix) is an IVF trained as faiss
    defaults (256 vectors per list, flat coarse quantizer); "hnswM" is a plain HNSW graph.
    """
    import faiss

    from vclip.retrieval import build_index

    if kind in ("auto", "ivf512"):
        index, desc = build_index(vectors, kind, seed=seed)
        return index, desc.rsplit("/nprobe", 1)[0]
    dim = vectors.shape[1]
    if kind.startswith("hnsw"):
        index = faiss.IndexHNSWFlat(dim, int(kind.removeprefix("hnsw")))
        index.hnsw.efConstruction = 80
        index.add(vectors)
        return index, kind
    nlist, *opts = kind.removeprefix("ivf").split("/")
    nlist = int(nlist)
    coarse = faiss.IndexHNSWFlat(dim, 32) if "hnsw" in opts else faiss.IndexFlatL2(dim)
    index = faiss.IndexIVFFlat(coarse, dim, nlist, faiss.METRIC_L2)
    index.cp.seed = seed
    for opt in opts:
        if opt.startswith("train"):
            index.cp.max_points_per_centroid = int(opt.removeprefix("train"))
            index.cp.niter = 10
    index.train(vectors)
    index.add(vectors)
    return index, kind


def _set_probe(index, probe: int) -> str:
    if hasattr(index, "nprobe"):
        index.nprobe = probe
        return f"nprobe{probe}"
    index.hnsw.efSearch = probe
    return f"efSearch{probe}"


def _recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f[f >= 0]) & set(e)) / len(e) for f, e in zip(found, exact)]))


def worker(spec: dict) -> dict:
    """Build one configuration over the memory-mapped vectors, run the epoch's searches, score recall."""
    import faiss

    from vclip.retrieval import search_index  # imports torch: outside the timed regions

    faiss.omp_set_num_threads(spec["threads"])
    _use_clock(spec["clock"])
    vectors = np.load(spec["vectors"], mmap_mode="r")
    queries = np.load(spec["queries"])  # row ids of all the epoch's queries
    sample = np.load(spec["sample"])  # positions in `queries` with an exact answer
    exact = np.load(spec["exact"])  # (len(sample), K) exact neighbour row ids
    runs = []
    if spec["kind"] == "ivf512-per-rank":
        share_of = np.load(spec["share_of"])
        build = search = 0.0
        found = {}
        for r, share in enumerate(rank_shares(len(vectors), spec["seed"])):
            local = np.ascontiguousarray(vectors[share])
            t0 = _now()
            index, _ = _build("ivf512", local, spec["seed"] + r)
            build += _now() - t0
            mine = np.flatnonzero(share_of[queries] == r)
            pos = np.searchsorted(share, queries[mine])
            t0 = _now()
            _, hits = index.search(local[pos], K)
            search += _now() - t0
            for m, row in zip(mine, hits):
                found[m] = np.where(row >= 0, share[np.maximum(row, 0)], -1)
            del index, local
        got = np.stack([found[s] for s in sample])
        runs.append({"index": "ivf512/nprobe1 per rank (8 ranks)", "build_s": build, "search_s": search,
                     "search": "per query", "recall_at_64": _recall(got, exact)})
    else:
        data = np.ascontiguousarray(vectors)
        t0 = _now()
        index, desc = _build(spec["kind"], data, spec["seed"])
        build = _now() - t0
        own = getattr(index, "nprobe", None)
        probes = [own] + [p for p in spec["probes"] if p != own] if spec["kind"] == "auto" else spec["probes"] or [own]
        # the reference searches query by query (index.search); the kit and the grid list by list
        search_fn = (lambda q: index.search(q, K)) if spec["kind"] == "ivf512" else (lambda q: search_index(index, q, K))
        for probe in probes:
            label = desc if probe is None else f"{desc}/{_set_probe(index, probe)}"
            label = f"auto: {label}" if spec["kind"] == "auto" and probe == own else label
            t0 = _now()
            _, hits = search_fn(data[queries])
            search = _now() - t0
            method = "per query" if spec["kind"] == "ivf512" or not hasattr(index, "nprobe") else "list by list"
            runs.append({"index": label, "build_s": build, "search_s": search, "search": method,
                         "recall_at_64": _recall(hits[sample], exact)})
    peak = _peak_rss_mb()
    return {"runs": [dict(r, peak_rss_mb=peak) for r in runs]}


# ----------------------------------------------------------------------------- driver
def configurations(n: int) -> list[tuple[str, list[int]]]:
    """(configuration, probe values) measured at size n.

    "auto" is searched with its own nprobe and, above the exact limit, with 1/2 and 3/4 of it (same
    build), to show what its nprobe buys; the grid holds IVF indexes with half and twice auto's lists.
    """
    from vclip.retrieval import auto_ivf, auto_nprobe

    configs = [("ivf512", [1])]
    if n // RANKS >= 512 * 48:  # the reference trains its per-rank index once 24,576 vectors are cached
        configs.insert(0, ("ivf512-per-rank", []))
    lists, probe = auto_ivf(n)
    if n > EXACT_MAX:
        configs.append(("auto", sorted({max(1, probe // 2), round(probe * 0.75)} - {probe})))
        for other in (lists // 2, lists * 2):
            if other * 32 <= n:
                other_probe = auto_nprobe(other)
                configs.append((f"ivf{other}/hnsw/train32", sorted({max(1, other_probe // 2), other_probe})))
    else:
        configs.append(("auto", []))
    if n <= 100_000:
        configs.append((f"ivf{round(4 * n ** 0.5)}", [1, 16]))  # faiss's defaults at the usual 4 sqrt(N) lists
        configs.append(("hnsw32", [64, 128]))
    return configs


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, rows: np.ndarray, threads: int) -> tuple:
    """Exact 64 neighbours of vectors[queries[rows]] among all vectors; (ids, seconds)."""
    import faiss

    faiss.omp_set_num_threads(threads)
    t0 = _now()
    _, ids = faiss.knn(np.ascontiguousarray(vectors[queries[rows]]), vectors, K)
    return ids, _now() - t0


def exact_per_rank(vectors, queries, rows, share_of, seed, threads) -> np.ndarray:
    """The exact 64 neighbours of each sampled query inside its own rank's share."""
    import faiss

    faiss.omp_set_num_threads(threads)
    out = np.empty((len(rows), K), dtype=np.int64)
    for r, share in enumerate(rank_shares(len(vectors), seed)):
        mine = np.flatnonzero(share_of[queries[rows]] == r)
        if len(mine):
            _, ids = faiss.knn(np.ascontiguousarray(vectors[queries[rows[mine]]]), np.ascontiguousarray(vectors[share]), K)
            out[mine] = share[ids]
    return out


def run_size(n: int, work: Path, args, save) -> list[dict]:
    vec_path = work / f"vectors_{n}.npy"
    t0 = time.perf_counter()
    video_task = write_vectors(vec_path, n, args.seed)
    print(f"\n## N = {n:,} ({len(np.unique(video_task)):,} tasks); vectors written in {time.perf_counter() - t0:.0f} s",
          flush=True)
    vectors = np.load(vec_path, mmap_mode="r")
    rng = np.random.default_rng(args.seed)
    queries = rng.choice(n, size=n // V, replace=False)
    sample = np.sort(rng.choice(len(queries), size=min(len(queries), args.exact_sample), replace=False))
    exact, secs = exact_neighbours(vectors, queries, sample, args.threads)
    exact_s = secs * len(queries) / len(sample)
    same_task = float(np.mean(video_task[exact] == video_task[queries[sample]][:, None]))
    print(f"exact search: {len(sample):,} of {len(queries):,} queries in {secs:.1f} s -> {exact_s:.1f} s for the epoch "
          f"({'measured' if len(sample) == len(queries) else 'scaled'}); same-task share of the exact 64 neighbours "
          f"{same_task:.2f}", flush=True)
    share_of = np.empty(n, dtype=np.int64)
    for r, share in enumerate(rank_shares(n, args.seed)):
        share_of[share] = r
    files = {name: work / f"{name}_{n}.npy" for name in ("queries", "sample", "exact", "exact_rank", "share_of")}
    np.save(files["queries"], queries)
    np.save(files["sample"], sample)
    np.save(files["exact"], exact)
    np.save(files["exact_rank"], exact_per_rank(vectors, queries, sample, share_of, args.seed, args.threads))
    np.save(files["share_of"], share_of)
    del vectors
    runs = []
    for kind, probes in configurations(n):
        if args.configs and kind not in args.configs:
            continue
        if kind == "auto" and args.auto_alone:
            probes = []
        reused = [r for r in args.reused if r["n"] == n and r.get("config", _config_of(r)) == kind]
        if kind in REFERENCE and reused:
            for r in reused:
                runs.append(r)
                save(runs)
                print(f"N={n:>9,}  {r['index']:38s} reused from: {r['measured_by']}", flush=True)
            continue
        spec = {"kind": kind, "probes": probes, "vectors": str(vec_path), "queries": str(files["queries"]),
                "sample": str(files["sample"]), "share_of": str(files["share_of"]), "seed": args.seed,
                "threads": args.threads, "clock": args.clock,
                "exact": str(files["exact_rank"] if kind == "ivf512-per-rank" else files["exact"])}
        proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"worker {kind} at N={n} failed:\n{proc.stderr}")
        for r in json.loads(proc.stdout.strip().splitlines()[-1])["runs"]:
            config = kind if kind != "auto" or r["index"].startswith("auto") else r["index"].rsplit("/nprobe", 1)[0]
            r = {"n": n, "config": config, **r, "exact_s": exact_s, "queries": len(queries),
                 "speedup_vs_exact": exact_s / (r["build_s"] + r["search_s"])}
            runs.append(r)
            save(runs)
            print(f"N={n:>9,}  {r['index']:38s} build {r['build_s']:8.1f} s  search {r['search_s']:7.1f} s  "
                  f"peak {r['peak_rss_mb']:7.0f} MB  recall@64 {r['recall_at_64']:.3f}  "
                  f"{r['speedup_vs_exact']:6.1f}x faster than exact", flush=True)
    vec_path.unlink()
    return runs


def _config_of(row: dict) -> str:
    """The configuration name of a saved row: "auto" for the kit's choice, else its index without nprobe."""
    if "per rank" in row["index"]:
        return "ivf512-per-rank"
    if row["index"].startswith("auto"):
        return "auto"
    return row["index"].rsplit("/nprobe", 1)[0].rsplit("/efSearch", 1)[0]


def load_reused(path: Path, seed: int) -> list[dict]:
    """The reference configurations' rows of a saved result of this benchmark, to copy instead of re-measuring.

    Only the reference's IVF512 (global and per rank) is reused, and only from a result over the same
    vectors (same seed; the vectors are regenerated identically from it). Each copied row keeps its
    own figures, including the exact search timed in its run, and says where it was measured.
    """
    try:
        saved = json.loads(path.read_text())
        rows = saved["runs"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SystemExit(f"--reuse {path}: not a saved result of this benchmark ({err})") from None
    saved_seed = saved.get("seed", 0)  # results saved before the seed was recorded used the default, 0
    if saved_seed != seed:
        raise SystemExit(f"--reuse {path}: its vectors used seed {saved_seed}, this run uses --seed {seed}")
    out = []
    for r in rows:
        if r.get("config", _config_of(r)) in REFERENCE:
            out.append({**r, "config": _config_of(r), "measured_by": r.get("measured_by", saved["command"])})
    return out


def time_embedding(preset: str, n_videos: int) -> dict:
    """Seconds per video of the embedding pass (16 aligned clips each), and its matmul FLOPs."""
    import torch

    from vclip.model import VideoCLIP, count_matmul_flops
    from vclip.retrieval import video_vectors
    from vclip.sampling import ArrayVideos

    rng = np.random.default_rng(0)
    videos = {}
    for i in range(n_videos):
        t = int(rng.integers(100, 200))
        starts = np.sort(rng.uniform(0, t, 20))
        videos[f"v{i}"] = (rng.standard_normal((t, 512)).astype(np.float32), starts, starts + rng.uniform(2, 6, 20),
                           [list(rng.integers(1000, 29000, int(rng.integers(4, 16)))) for _ in range(20)])
    store = ArrayVideos(videos)
    torch.manual_seed(0)
    model = VideoCLIP.from_preset(preset)
    video_vectors(model, store, store.video_ids[:1], 16, np.random.default_rng(0), progress=False)  # warm-up
    t0 = time.perf_counter()
    video_vectors(model, store, store.video_ids, 16, np.random.default_rng(0), videos_per_batch=8, progress=False)
    per_video = (time.perf_counter() - t0) / n_videos
    flops = count_matmul_flops(model.config, video_batch=16, text_batch=16, text_len=63)
    return {"preset": preset, "seconds_per_video": per_video, "gflop_per_video": flops / 1e9}


def markdown_table(result: dict) -> str:
    """The result as the Markdown table of docs/performance.md."""
    lines = ["| N | index | search | build s | search s | exact s | build + search s | vs exact | recall@64 | peak MB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in result["runs"]:
        total = r["build_s"] + r["search_s"]
        mark = " (earlier run)" if "measured_by" in r else ""
        lines.append(f"| {r['n']:,} | `{r['index']}`{mark} | {r.get('search', 'per query')} | {r['build_s']:.1f} | "
                     f"{r['search_s']:.1f} | {r['exact_s']:.1f} | {total:.1f} | {r['exact_s'] / total:.1f}x | "
                     f"{r['recall_at_64']:.3f} | {r['peak_rss_mb']:,.0f} |")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """Time (build + the epoch's searches, and exact search) and recall@64 against N, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"]
    families = {}
    for r in runs:
        name = r["index"].split(": ")[0] if r["index"].startswith("auto") else r["index"]
        families.setdefault(name, []).append(r)
    keep = [f for f, rs in families.items() if len(rs) > 1 or f == "auto"]
    fig, (ax_t, ax_r) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120)
    by_n = {}
    for r in runs:  # exact search is timed in every run; a size measured by several runs shows their mean
        by_n.setdefault(r["n"], set()).add(r["exact_s"])
    exact = sorted((n, float(np.mean(sorted(v)))) for n, v in by_n.items())
    ax_t.plot(*zip(*exact), "k--o", label="exact search (faiss.knn)")
    for name in keep:
        rs = sorted(families[name], key=lambda r: r["n"])
        ns = [r["n"] for r in rs]
        ax_t.plot(ns, [r["build_s"] + r["search_s"] for r in rs], "-o", label=name)
        ax_r.plot(ns, [r["recall_at_64"] for r in rs], "-o", label=name)
    ax_t.set(xscale="log", yscale="log", xlabel="videos N", ylabel=f"seconds per epoch ({result['clock']} clock, "
             f"{result['threads']} thread{'s' if result['threads'] > 1 else ''})",
             title="Index build + the epoch's N/32 searches")
    ax_r.axhline(0.95, color="grey", lw=0.8, ls=":")
    ax_r.set(xscale="log", xlabel="videos N", ylabel="recall@64 against exact search", ylim=(0, 1.02),
             title="Recall of the 64 neighbours")
    ax_t.legend(fontsize=7)
    ax_r.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    print(f"wrote {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, HOWTO100M])
    parser.add_argument("--exact-sample", type=int, default=1000, help="queries searched exactly (ground truth)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="faiss threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clock", choices=sorted(CLOCK), default="wall",
                        help="wall: elapsed seconds; cpu: the process's CPU seconds (use with --threads 1 on a "
                             "machine that other jobs share: one thread's CPU seconds are a quiet core's wall seconds)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "retrieval.json")
    parser.add_argument("--embed", action="store_true", help="also time the embedding pass per preset")
    parser.add_argument("--figure", type=Path, help="also draw time and recall against N into this PNG")
    parser.add_argument("--plot", type=Path, metavar="RESULT_JSON", help="only draw --figure from a saved result")
    parser.add_argument("--reuse", type=Path, metavar="RESULT_JSON",
                        help="copy the reference's IVF512 rows (global, per rank) from this saved result over the same "
                             "vectors instead of re-measuring them (each copied row names the command that measured it)")
    parser.add_argument("--add-to", type=Path, metavar="RESULT_JSON",
                        help="start from this saved result's rows at the sizes this run does not measure")
    parser.add_argument("--configs", nargs="+", metavar="NAME",
                        help="measure only these configurations (names as in the JSON's `config`: auto, ivf512, "
                             "ivf512-per-rank, ivf1024/hnsw/train32, ...)")
    parser.add_argument("--auto-alone", action="store_true", help="search auto's index with its own nprobe only")
    parser.add_argument("--markdown", type=Path, metavar="RESULT_JSON", help="only print a saved result as a Markdown table")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown_table(json.loads(args.markdown.read_text())))
        return 0
    if args.plot:
        plot(json.loads(args.plot.read_text()), args.figure or args.plot.with_suffix(".png"))
        return 0
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if min(args.sizes) < 4096:
        parser.error(f"--sizes must be at least 4096 (the IVF512 per-rank configuration needs 512 x 8), got {min(args.sizes)}")
    import faiss

    _use_clock(args.clock)
    print(f"faiss {faiss.__version__}, {args.threads} threads, {args.clock} clock, {platform.processor() or platform.machine()}", flush=True)
    args.reused = load_reused(args.reuse, args.seed) if args.reuse else []
    command = "python benchmarks/bench_retrieval.py " + " ".join(argv if argv is not None else sys.argv[1:])
    runs, commands = [], [command]
    if args.add_to:
        earlier = json.loads(args.add_to.read_text())
        if (earlier.get("seed", 0), earlier["clock"], earlier["threads"]) != (args.seed, args.clock, args.threads):
            parser.error(f"--add-to {args.add_to}: measured with another seed, clock or thread count")
        configs = {n: {kind for kind, _ in configurations(n) if not args.configs or kind in args.configs}
                   for n in args.sizes}  # what this run measures; the earlier rows of the rest are kept
        for r in earlier["runs"]:
            r = {**r, "config": _config_of(r), "search": r.get("search", "per query")}  # older rows: per query
            if r["config"] == "auto" and r["n"] in configs and "auto" in configs[r["n"]]:
                # auto is re-measured: an earlier auto row stays as a row of its index, named for what it was
                index = r["index"].removeprefix("auto: ")
                r = {**r, "index": f"{index} (auto before this run)", "config": _config_of({"index": index})}
            if r["n"] not in configs or r["config"] not in configs[r["n"]]:
                runs.append({**r, "measured_by": r.get("measured_by", earlier["command"])})
        commands = earlier.get("commands", [earlier["command"]]) + commands
    result = {"command": command, "commands": commands, "seed": args.seed,
              "threads": args.threads, "clock": args.clock, "k": K, "videos_per_group": V, "dim": DIM,
              "complete": False, "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save(new_runs: list[dict]) -> None:  # after every configuration, so a stopped run keeps its figures
        args.out.write_text(json.dumps({**result, "runs": runs + new_runs}, indent=1) + "\n")

    with tempfile.TemporaryDirectory(prefix="vclip-bench-retrieval-") as tmp:
        for n in args.sizes:
            runs.extend(run_size(n, Path(tmp), args, save))
    measured = {r["n"] for r in runs}
    result["complete"] = all(n in measured for n in (10_000, 100_000, HOWTO100M))  # every size of the issue
    if args.embed:
        print("\n## Embedding pass (16 aligned clips per video, CPU, float32)")
        result["embedding"] = []
        for preset in ("tiny", "minilm", "paper"):
            r = time_embedding(preset, 4 if preset == "paper" else 16)
            result["embedding"].append(r)
            print(f"{preset:7s} {r['seconds_per_video'] * 1e3:9.1f} ms/video  {r['gflop_per_video']:8.1f} GFLOP/video  "
                  f"-> 1.2M videos: {r['seconds_per_video'] * HOWTO100M / 3600:9.1f} CPU-hours")
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {args.out}")
    if args.figure:
        plot(result, args.figure)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
