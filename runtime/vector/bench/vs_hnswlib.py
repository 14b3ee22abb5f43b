#!/usr/bin/env python3
"""hnswlib on the same .npy files as mlp-vector-bench, for a side-by-side comparison.

    cargo run --release -p mlp-vector --bin mlp-vector-bench -- --n 100000 --dim 384 \
        --dump /tmp/vb --ef-search 10,16,32,64
    python3 runtime/vector/bench/vs_hnswlib.py --dir /tmp/vb --metric cosine \
        --ef-search 10,16,32,64

Needs `pip install hnswlib numpy`. Reports build time (all threads), queries per second on one
thread (one knn_query call over all queries with num_threads=1, so no per-query Python
overhead) and on all threads (best of --repeat runs), and recall@k against exact neighbours computed with numpy
(brute force, float64 scores).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

try:
    import hnswlib
except ImportError:
    sys.exit("hnswlib is not installed: pip install hnswlib")


def exact_neighbours(data, queries, metric, k):
    d = data.astype(np.float64)
    q = queries.astype(np.float64)
    if metric == "cosine":
        d = d / np.linalg.norm(d, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    out = np.empty((len(q), k), dtype=np.int64)
    for s in range(0, len(q), 256):
        block = q[s : s + 256] @ d.T
        if metric == "l2":
            block = -(np.sum(d * d, axis=1)[None, :] - 2 * block)
        top = np.argpartition(-block, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(block, top, axis=1), axis=1, kind="stable")
        out[s : s + 256] = np.take_along_axis(top, order, axis=1)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True, help="folder with vectors.npy and queries.npy")
    p.add_argument("--metric", default="cosine", choices=["cosine", "dot", "l2"])
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=100)
    p.add_argument("--ef-search", default="10,16,32,64,128")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=3, help="best of N timings (the machine may be shared)")
    p.add_argument("--save-index", help="save the built hnswlib index here")
    p.add_argument("--load-index", help="load a saved hnswlib index instead of building")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()

    data = np.load(os.path.join(a.dir, "vectors.npy")).astype(np.float32)
    queries = np.load(os.path.join(a.dir, "queries.npy")).astype(np.float32)
    n, dim = data.shape
    space = {"cosine": "cosine", "dot": "ip", "l2": "l2"}[a.metric]
    truth = exact_neighbours(data, queries, a.metric, a.k)

    index = hnswlib.Index(space=space, dim=dim)
    t = time.perf_counter()
    if a.load_index:
        index.load_index(a.load_index, max_elements=n)
    else:
        index.init_index(max_elements=n, ef_construction=a.ef_construction, M=a.m, random_seed=a.seed)
        index.add_items(data, np.arange(n), num_threads=-1)
    build = time.perf_counter() - t
    if a.save_index:
        index.save_index(a.save_index)
    log = (lambda *x: None) if a.json else (lambda *x: print(*x, file=sys.stderr))
    try:
        from importlib.metadata import version
        hv = version("hnswlib")
    except Exception:
        hv = "?"
    log(f"hnswlib {hv}: {n} x {dim}, M {a.m}, "
        f"ef_construction {a.ef_construction}, {'load' if a.load_index else 'build'} {build:.2f}s")

    rows = []
    for ef in [int(x) for x in a.ef_search.split(",")]:
        index.set_ef(max(ef, a.k))
        single = multi = float("inf")
        for _ in range(max(1, a.repeat)):
            t = time.perf_counter()
            labels, _ = index.knn_query(queries, k=a.k, num_threads=1)
            single = min(single, time.perf_counter() - t)
        for _ in range(max(1, a.repeat)):
            t = time.perf_counter()
            index.knn_query(queries, k=a.k, num_threads=-1)
            multi = min(multi, time.perf_counter() - t)
        recall = np.mean([len(set(l) & set(g)) / a.k for l, g in zip(labels, truth)])
        rows.append({"ef_search": ef, "recall": float(recall),
                     "qps_single": len(queries) / single, "qps_multi": len(queries) / multi})
        log(f"ef {ef:>4}: recall@{a.k} {recall:.4f}  QPS 1 thread {len(queries) / single:>8.0f}"
            f"  QPS all threads {len(queries) / multi:>8.0f}")
    if a.json:
        print(json.dumps({"engine": "hnswlib", "version": hv, "n": n, "dim": dim, "metric": a.metric, "m": a.m,
                          "ef_construction": a.ef_construction, "build_seconds": build,
                          "results": rows}, indent=2))


if __name__ == "__main__":
    main()
