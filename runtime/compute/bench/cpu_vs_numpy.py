#!/usr/bin/env python3
"""CPU matmul: mlp's ndarray backend against numpy (OpenBLAS) on the same machine, one run.

    cargo build --release -p mlp
    python3 runtime/compute/bench/cpu_vs_numpy.py [--target DIR] [--repeats N] [--square 256,512]

mlp's figures come from `mlp bench kernels --device cpu --json` (median of N dispatches);
numpy's from the same shapes, median of N calls, float32.
"""
import argparse, json, os, statistics, subprocess, time
import numpy as np

def median_time(fn, repeats):
    fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default=os.environ.get("CARGO_TARGET_DIR", "target"))
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--square", default="256,512,1024,2048",
                    help="extra square n x n x n products (comma-separated; empty for none)")
    a = ap.parse_args()
    mlp = os.path.join(a.target, "release", "mlp")
    cmd = [mlp, "bench", "kernels", "--device", "cpu", "--json", "--repeats", str(a.repeats), "--ops", "matmul"]
    if a.square:
        cmd += ["--square", a.square]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    kernels = json.loads(out)["kernels"]
    rng = np.random.default_rng(0)
    print(f"{'op':<10} {'shapes':<34} {'mlp GFLOP/s':>12} {'numpy GFLOP/s':>14} {'ratio':>7}")
    rows = []
    for k in kernels:
        if k["op"] != "matmul":
            continue
        (sa, sb), detail = k["inputs"], k["detail"]
        ta, tb = "trans_a=true" in detail, "trans_b=true" in detail
        A = rng.standard_normal(sa, dtype=np.float32)
        B = rng.standard_normal(sb, dtype=np.float32)
        f = lambda: np.matmul(np.swapaxes(A, -1, -2) if ta else A, np.swapaxes(B, -1, -2) if tb else B)
        secs = median_time(f, a.repeats)
        m = sa[-1] if ta else sa[-2]
        kk = sa[-2] if ta else sa[-1]
        n = sb[-2] if tb else sb[-1]
        batch = int(np.prod(sa[:-2])) if len(sa) > 2 else 1
        np_gflops = 2 * batch * m * n * kk / secs / 1e9
        rows.append({"shapes": [sa, sb], "detail": detail, "mlp_gflops": k["gflops"], "numpy_gflops": np_gflops})
        print(f"{'matmul':<10} {str(sa) + ' ' + str(sb) + (' Aᵀ' if ta else '') + (' Bᵀ' if tb else ''):<34} "
              f"{k['gflops']:>12.1f} {np_gflops:>14.1f} {k['gflops'] / np_gflops:>7.2f}")
    print(json.dumps(rows))

if __name__ == "__main__":
    main()
