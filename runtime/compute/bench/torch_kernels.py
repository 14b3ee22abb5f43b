#!/usr/bin/env python3
"""PyTorch fp32 (TF32 off) on the shapes of `mlp bench kernels` that do arithmetic: matmul and
conv2d forward/backward, plus square matmuls up to 8192. Prints JSON (GFLOP/s per case).

    python3 runtime/compute/bench/torch_kernels.py [--device cuda] [--repeats 20]
"""
import argparse, json, time
import torch
import torch.nn.functional as F

def timed(fn, dev, repeats):
    # Warm-up as `mlp bench kernels` does it: back-to-back runs for 150 ms (at most 1000).
    t0 = time.perf_counter()
    for _ in range(1000):
        fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if time.perf_counter() - t0 >= 0.15:
            break
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        ts.append(time.perf_counter() - t)
    ts.sort()
    return ts[len(ts) // 2]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=20)
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device(a.device)
    r = lambda *s: torch.randn(*s, device=dev)
    out = []
    for n in (1024, 2048, 4096, 8192):
        A, B = r(n, n), r(n, n)
        s = timed(lambda: A @ B, dev, a.repeats)
        out.append({"op": "matmul", "shape": [n, n, n], "seconds": s, "gflops": 2 * n ** 3 / s / 1e9})
    convs = [(8, 32, 32, 64, 3, 1), (8, 32, 64, 64, 3, 2), (8, 64, 32, 64, 1, 1)]
    # The 3x3 convolutions of the wide U-Net (32 base channels, batch 32), level by level.
    convs += [(32, c, c, 64 >> lv, 3, 1) for lv, c in enumerate((32, 64, 128, 256))]
    for (n, ci, co, hw, k, st) in convs:
        x = r(n, ci, hw, hw).requires_grad_()
        w = r(co, ci, k, k).requires_grad_()
        pad = k // 2
        y = F.conv2d(x, w, stride=st, padding=pad)
        oh = y.shape[2]
        flops = 2 * n * co * oh * oh * ci * k * k
        dy = torch.randn_like(y)
        s = timed(lambda: F.conv2d(x, w, stride=st, padding=pad), dev, a.repeats)
        out.append({"op": "conv2d", "shape": [n, ci, co, hw, k, st], "seconds": s, "gflops": flops / s / 1e9})
        s = timed(lambda: torch.nn.grad.conv2d_input(x.shape, w, dy, stride=st, padding=pad), dev, a.repeats)
        out.append({"op": "conv2d_backward_input", "shape": [n, ci, co, hw, k, st], "seconds": s, "gflops": flops / s / 1e9})
        s = timed(lambda: torch.nn.grad.conv2d_weight(x, w.shape, dy, stride=st, padding=pad), dev, a.repeats)
        out.append({"op": "conv2d_backward_weight", "shape": [n, ci, co, hw, k, st], "seconds": s, "gflops": flops / s / 1e9})
    print(json.dumps({"framework": "pytorch " + torch.__version__, "device": str(dev), "kernels": out}, indent=2))

if __name__ == "__main__":
    main()
