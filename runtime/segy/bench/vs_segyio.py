#!/usr/bin/env python3
"""mlp-segy against segyio (and segfast, when installed) on one ~200 MB IBM-float file.

    python3 runtime/segy/bench/vs_segyio.py [--size IL,XL,SAMPLES] [--repeats N] [--file F]

Builds nothing: it runs target/release/mlp (to generate the file) and
target/release/mlp-segy-bench; build them first with
`cargo build --release -p mlp -p mlp-segy`. Every tool reads the same file, warm in the page
cache, on the same machine, in this one run. Prints a table and one JSON line.
"""
import argparse, json, os, statistics, subprocess, sys, time

def timed(fn, repeats):
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    ts.sort()
    return {"best_s": ts[0], "median_s": statistics.median(ts)}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="400,350,300")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--file", default=None)
    ap.add_argument("--target", default=os.environ.get("CARGO_TARGET_DIR", "target"))
    a = ap.parse_args()
    rel = os.path.join(a.target, "release")
    path = a.file or os.path.join(a.target, f"bench-{a.size.replace(',', 'x')}-ibm.sgy")
    if not os.path.exists(path):
        subprocess.run([os.path.join(rel, "mlp"), "segy", "synth", "--out", path, "--size", a.size,
                        "--format", "1", "--seed", "1"], check=True)
    size = os.path.getsize(path)
    # Warm the page cache.
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass

    import segyio
    results = {}
    f = segyio.open(path)
    il, xl, k = f.ilines[len(f.ilines) // 2], f.xlines[len(f.xlines) // 2], len(f.samples) // 2
    r = a.repeats
    results["segyio"] = {
        "open": timed(lambda: segyio.open(path).close(), r),
        "all": timed(lambda: f.trace.raw[:], r),
        "inline": timed(lambda: f.iline[il], r * 4),
        "crossline": timed(lambda: f.xline[xl], r * 4),
        "depth_slice": timed(lambda: f.depth_slice[k], r * 4),
    }
    try:
        from segfast import MemmapLoader
        import numpy as np
        m = MemmapLoader(path)
        idx = np.arange(m.n_traces)
        results["segfast"] = {
            "all": timed(lambda: m.load_traces(idx), r),
            "depth_slice": timed(lambda: m.load_depth_slices([k]), r * 4),
        }
    except ImportError:
        pass
    out = subprocess.run([os.path.join(rel, "mlp-segy-bench"), path, str(r)], check=True,
                         capture_output=True, text=True).stdout
    results["mlp"] = json.loads(out)
    threads = results["mlp"].pop("threads")
    for key in ("bytes", "traces"):
        results["mlp"].pop(key)

    print(f"file: {path}, {size / 1e6:.1f} MB, {f.tracecount} traces x {len(f.samples)} samples, "
          f"IBM float; mlp on {threads} threads; best of {r} warm runs (slices: {4 * r})")
    print(f"{'operation':<12} {'segyio':>10} {'segfast':>10} {'mlp':>10} {'mlp vs segyio':>14} {'mlp vs segfast':>15}")
    for op in ("open", "all", "inline", "crossline", "depth_slice"):
        s = results["segyio"][op]["best_s"]
        m = results["mlp"][op]["best_s"]
        sf = results.get("segfast", {}).get(op, {}).get("best_s")
        sf_s = f"{sf * 1e3:8.2f}ms" if sf else f"{'-':>10}"
        sf_r = f"{sf / m:14.1f}x" if sf else f"{'-':>15}"
        print(f"{op:<12} {s * 1e3:8.2f}ms {sf_s} {m * 1e3:8.2f}ms {s / m:13.1f}x {sf_r}")
    s, m = results["segyio"]["all"]["best_s"], results["mlp"]["all"]["best_s"]
    print(f"whole-file throughput: segyio {size / s / 1e9:.2f} GB/s, mlp {size / m / 1e9:.2f} GB/s")
    print(json.dumps(results))

if __name__ == "__main__":
    sys.exit(main())
