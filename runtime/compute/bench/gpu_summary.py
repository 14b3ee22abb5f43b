#!/usr/bin/env python3
"""The tables of GPU_RESULTS.md from one gpu_compare.sh run: mlp against PyTorch on the same GPU.

    python3 runtime/compute/bench/gpu_summary.py RESULTS   # results.tgz or the folder it unpacks to

Prints Markdown: the device, square matmuls (TFLOP/s, share of cuBLAS, every tile variant),
convolutions (GFLOP/s, mlp against cuDNN per shape and direction), the U-Net steps (seconds per
step over epochs 2 and later, speed against PyTorch, final loss and IoU), autotuning's choices
and the top kernels of the profiled runs. Steps that failed or are missing are named, not
skipped silently: summary.txt's exit codes come first.
"""
import io, json, os, re, statistics, sys, tarfile

GOAL_MATMUL = 0.80  # share of cuBLAS
GOAL_UNET = 0.50  # speed against PyTorch


def load(path):
    """{file name: bytes} from a results.tgz or a folder."""
    files = {}
    if not os.path.exists(path):
        sys.exit(f"gpu_summary: {path}: no such file or folder (give results.tgz or its folder)")
    if not os.path.isdir(path) and not tarfile.is_tarfile(path):
        sys.exit(f"gpu_summary: {path}: not a folder nor a tar archive (give results.tgz)")
    if os.path.isdir(path):
        for name in os.listdir(path):
            p = os.path.join(path, name)
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    files[name] = f.read()
    else:
        with tarfile.open(path) as t:
            for m in t.getmembers():
                if m.isfile():
                    files[os.path.basename(m.name)] = t.extractfile(m).read()
    return files


_parsed = {}


def js(files, name):
    """A step's JSON, parsed once; None when missing or unreadable (said on stderr)."""
    if name in _parsed:
        return _parsed[name]
    raw = files.get(name + ".json")
    v = None
    if raw:
        try:
            v = json.loads(raw)
        except ValueError as e:
            # A step cut short leaves partial JSON: say so, and treat it as missing.
            print(f"gpu_summary: {name}.json is not valid JSON ({e}); treated as missing",
                  file=sys.stderr)
    _parsed[name] = v
    return v


def conv_key(k):
    """(op, n, ci, co, hw, kernel, stride) of an mlp `bench kernels` convolution row."""
    if not k["op"].startswith("conv2d") or len(k["inputs"]) != 2:
        return None
    m = re.search(r"stride (\d+)", k["detail"])
    st = int(m.group(1)) if m else 1
    a, b = k["inputs"]
    if k["op"] == "conv2d":
        return ("conv2d", a[0], a[1], b[0], a[2], b[2], st)
    if k["op"] == "conv2d_backward_input":  # dy [n, co, oh, ow], w [co, ci, k, k]
        return ("conv2d_backward_input", a[0], b[1], a[1], a[2] * st, b[2], st)
    if k["op"] == "conv2d_backward_weight":  # x [n, ci, h, w], dy [n, co, oh, ow]
        ks = int(re.match(r"(\d+)x", k["detail"]).group(1))
        return ("conv2d_backward_weight", a[0], a[1], b[1], a[2], ks, st)
    return None


def square(k):
    """n of a plain square matmul row, else None."""
    if k["op"] != "matmul" or k.get("detail") != "trans_a=false trans_b=false":
        return None
    a, b = k["inputs"]
    if len(a) == 2 and a[0] == a[1] == b[0] == b[1]:
        return a[0]
    return None


def steps(u):
    """Median seconds per step over epochs 2 and later (epoch 1 compiles and tunes)."""
    eps = u.get("epochs") or []
    later = [e["seconds_per_step"] for e in eps[1:]] or [e["seconds_per_step"] for e in eps]
    return statistics.median(later) if later else None


def fmt(v, spec=".1f", none="-"):
    return none if v is None else format(v, spec)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    files = load(sys.argv[1])
    out = io.StringIO()
    w = lambda s="": print(s, file=out)
    summ = files.get("summary.txt", b"").decode()
    w("## Steps (gpu_compare.sh summary.txt)\n")
    w("```\n" + (summ.strip() or "summary.txt missing") + "\n```\n")
    smi = files.get("nvidia-smi.txt", b"").decode().splitlines()
    gpu_line = next((l for l in smi if "NVIDIA" in l and "Driver" not in l), "")
    dev = js(files, "devices") or {}
    w(f"Device: {gpu_line.strip(' |') or '?'}; mlp adapter: "
      f"{(js(files, 'mlp_kernels_gpu') or {}).get('device', '?')}\n")

    # Square matmuls.
    mlp = js(files, "mlp_kernels_gpu")
    torch = js(files, "torch_kernels")
    variants = [("rule", "mlp_matmul_rule")] + [
        (t, f"mlp_matmul_tile_{t}") for t in ("64x64", "128x128", "128x256", "256x128")
    ] + [("checks on", "mlp_matmul_checks"), ("guarded", "mlp_matmul_guarded")]
    var_rows = {name: {square(k): k for k in (js(files, f) or {}).get("kernels", []) if square(k)}
                for name, f in variants}
    ours = {square(k): k for k in (mlp or {}).get("kernels", []) if square(k)}
    theirs = {k["shape"][0]: k for k in (torch or {}).get("kernels", []) if k["op"] == "matmul"}
    w("## Matmul, square, TFLOP/s\n")
    head = ["n", "cuBLAS (torch)", "mlp", "share"] + [v for v, _ in variants]
    w("| " + " | ".join(head) + " |")
    w("|" + "---|" * len(head))
    best_share = None
    for n in sorted(set(ours) | set(theirs)):
        t = theirs.get(n, {}).get("gflops")
        m = ours.get(n, {}).get("gflops")
        share = m / t if (m and t) else None
        if share is not None:
            best_share = max(best_share or 0, share)
        row = [str(n), fmt(t and t / 1e3, ".2f"), fmt(m and m / 1e3, ".2f"),
               fmt(share and share * 100, ".0f") + "%"]
        for v, _ in variants:
            g = var_rows[v].get(n, {}).get("gflops")
            row.append(fmt(g and g / 1e3, ".2f"))
        w("| " + " | ".join(row) + " |")
    w(f"\nGoal {GOAL_MATMUL:.0%} of cuBLAS: best share {fmt(best_share and best_share * 100, '.0f')}% "
      f"-> {'met' if best_share and best_share >= GOAL_MATMUL else 'NOT met'}\n")

    # Convolutions.
    conv_vars = [("guarded", "mlp_conv_guarded")] + [(f"tile {t}", f"mlp_conv_tile_{t}") for t in (32, 64, 128)]
    cv = {name: {conv_key(k): k for k in (js(files, f) or {}).get("kernels", []) if conv_key(k)}
          for name, f in conv_vars}
    ours = {conv_key(k): k for k in (mlp or {}).get("kernels", []) if conv_key(k)}
    theirs = {(k["op"], *k["shape"]): k for k in (torch or {}).get("kernels", []) if k["op"].startswith("conv")}
    w("## Convolutions, GFLOP/s (shape: batch, in, out, image, kernel, stride)\n")
    head = ["op", "shape", "cuDNN", "mlp", "mlp/cuDNN"] + [v for v, _ in conv_vars]
    w("| " + " | ".join(head) + " |")
    w("|" + "---|" * len(head))
    for key in sorted(set(ours) | set(theirs)):
        t = theirs.get(key, {}).get("gflops")
        m = ours.get(key, {}).get("gflops")
        row = [key[0], ",".join(map(str, key[1:])), fmt(t, ".0f"), fmt(m, ".0f"),
               fmt(m / t if (m and t) else None, ".2f")]
        row += [fmt(cv[v].get(key, {}).get("gflops"), ".0f") for v, _ in conv_vars]
        w("| " + " | ".join(row) + " |")
    w()

    # U-Net steps.
    w("## U-Net training step (seconds per step: median of epochs 2 and later)\n")
    w("| config | PyTorch ms/step | mlp ms/step | mlp speed vs PyTorch | loss torch / mlp | IoU torch / mlp |")
    w("|---|---|---|---|---|---|")
    for label, ours_f, theirs_f in [
        ("default (8 ch, batch 8)", "mlp_unet_gpu", "torch_unet"),
        ("wide (32 ch, batch 32)", "mlp_unet_wide_gpu", "torch_unet_wide"),
        ("wide, autotuning off", "mlp_unet_wide_rule", "torch_unet_wide"),
        ("wide, guarded convs, 1 epoch", "mlp_unet_wide_guarded", None),
    ]:
        u, t = js(files, ours_f), js(files, theirs_f) if theirs_f else None
        if not u:
            w(f"| {label} | - | missing ({ours_f}) | | | |")
            continue
        su = steps(u) if ours_f != "mlp_unet_wide_guarded" else statistics.median(
            e["seconds_per_step"] for e in u["epochs"])
        st = steps(t) if t else None
        speed = st / su if (st and su) else None
        verdict = ""
        if speed is not None and label.startswith(("default", "wide (")):
            verdict = " (goal met)" if speed >= GOAL_UNET else " (goal NOT met)"
        w(f"| {label} | {fmt(st and st * 1e3, '.2f')} | {fmt(su and su * 1e3, '.2f')} | "
          f"{fmt(speed, '.2f')}x{verdict} | {fmt(t and t.get('final_train_loss'), '.3f')} / "
          f"{fmt(u.get('final_train_loss'), '.3f')} | {fmt(t and t.get('final_val_iou'), '.3f')} / "
          f"{fmt(u.get('final_val_iou'), '.3f')} |")
    w()

    # Autotuning.
    for f in ("mlp_unet_wide_gpu", "mlp_unet_gpu", "mlp_kernels_gpu"):
        a = (js(files, f) or {}).get("autotune")
        if not a:
            continue
        ch = a.get("choices", [])
        moved = [c for c in ch if c["chosen"] != c["default"]]
        w(f"## Autotuning in {f}: enabled {a.get('enabled')}, {len(ch)} ops tuned, "
          f"{len(moved)} away from the size rule\n")
        for c in moved[:40]:
            t = dict((k, v) for k, v in c["candidates"])
            gain = t[c["default"]] / t[c["chosen"]] if t.get(c["chosen"]) else None
            w(f"- {c['op']}: {c['default']} {t[c['default']]:.1f} us -> {c['chosen']} "
              f"{t[c['chosen']]:.1f} us ({fmt(gain, '.2f')}x)")
        w()

    # Profiles.
    for f in ("mlp_unet_wide_profile", "mlp_unet_profile"):
        p = (js(files, f) or {}).get("profile")
        if not p or "kernels" not in p:
            continue
        w(f"## Profile of {f}: {fmt(p.get('gpu_ms'), '.1f')} ms GPU time, "
          f"{fmt(p.get('gpu_busy_percent'), '.1f')}% of wall time\n")
        w("| kernel | calls | total ms | mean us | % |")
        w("|---|---|---|---|---|")
        for r in p["kernels"][:12]:
            w(f"| {r['kernel']} | {r['calls']} | {r['total_ms']:.2f} | {r['mean_us']:.1f} | {r['percent']:.1f} |")
        w()
    print(out.getvalue(), end="")


if __name__ == "__main__":
    main()
