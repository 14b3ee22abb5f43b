#!/usr/bin/env python3
"""Generates torch_reference.safetensors: PyTorch reference results for every op of
`mlp_compute::op::Op` (forward, backward, optimizers), read by ../torch_reference.rs.

    python3 runtime/compute/tests/data/gen_torch_reference.py

Needs torch (CPU is enough) and safetensors. Deterministic: a fixed seed, fixed shapes, so
rerunning it rewrites the same file (up to torch version differences in the last bit).

Every input is drawn as float32 (what our ops take) and stored as float32; every expected
output is computed in float64 from those exact inputs (`x.double()`) with torch's own
functions and autograd, then rounded once to float32, so the reference is not itself an
f32 computation. Hyper-parameters are rounded to float32 before torch sees them, so torch
and our ops use the same values.

Layout: tensors are named `<case>/<in|init|out>/<operand>` (an input shared by several cases,
such as a forward input reused by its backward, is stored once under its first case's name);
the one metadata key "reference" holds JSON {"format", "version", "torch", "cases"}, "cases" a
list of
    {"name", "op" (Op::name()), "params" {...}, "inputs": [{"name", "tensor", "shape"}],
     "init": [...] (in-place ops: the outputs' values before the step),
     "outputs": [...] (expected values)}
in the operand order of op.rs.
"""

import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(20240611)
GEN = torch.Generator().manual_seed(20240611)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_reference.safetensors")

TENSORS = {}
CASES = []
SHARED = {}
KEEP = []


def f32(v):
    """A Python float rounded to float32 (so torch and our f32 hyper-parameters agree)."""
    return float(np.float32(v))


def uniform(shape, lo=-1.0, hi=1.0):
    return (lo + (hi - lo) * torch.rand(*shape, generator=GEN, dtype=torch.float64)).float()


def levels(shape, k=3):
    """Integers 0..k-1 as float32: many ties."""
    return torch.randint(0, k, tuple(shape), generator=GEN).float()


def d(t):
    """float32 input -> float64 leaf that records gradients."""
    return t.detach().double().requires_grad_(True)


def operands(case, kind, named):
    out = []
    for name, t in named:
        t = t.detach()
        if t.dtype != torch.float32:
            t = t.float()
        # An operand shared between cases (a forward input reused by its backward) is
        # stored once.
        ident = (t.data_ptr(), tuple(t.shape), tuple(t.stride()))
        key = SHARED.get(ident)
        if key is None:
            key = f"{case}/{kind}/{name}"
            assert key not in TENSORS, key
            TENSORS[key] = t.contiguous().clone()
            SHARED[ident] = key
            KEEP.append(t)  # keeps data_ptr unique while SHARED refers to it
        out.append({"name": name, "tensor": key, "shape": list(t.shape)})
    return out


def case(name, op, params, inputs, outputs, init=None):
    assert all(c["name"] != name for c in CASES), name
    for _, t in inputs + (init or []):
        assert t.dtype == torch.float32, (name, "inputs must be float32")
    for oname, t in outputs:
        assert t.dtype == torch.float64, (name, oname, "expected outputs must be float64")
    CASES.append(
        {
            "name": name,
            "op": op,
            "params": params,
            "inputs": operands(name, "in", inputs),
            "init": operands(name, "init", init or []),
            "outputs": operands(name, "out", outputs),
        }
    )


def vjp(y, leaves, dy):
    """Gradients of sum(y * dy) with respect to leaves (float64)."""
    return torch.autograd.grad(y, leaves, grad_outputs=dy.double())


# ------------------------------------------------------------------------------------ matmul


def matmul_cases():
    # (batch of a, batch of b, m, k, n)
    shapes = [
        ([], [], 7, 13, 5),
        ([2], [2], 3, 6, 4),
        ([3], [], 5, 7, 6),  # b rank 2: broadcast over a's batch
        ([], [2], 4, 9, 3),  # a rank 2
        ([2, 2], [2, 2], 3, 5, 2),
        ([], [], 33, 40, 17),
    ]
    for i, (ab, bb, m, k, n) in enumerate(shapes):
        for ta in (False, True):
            for tb in (False, True):
                a = uniform(ab + ([k, m] if ta else [m, k]))
                b = uniform(bb + ([n, k] if tb else [k, n]))
                A = a.double().transpose(-1, -2) if ta else a.double()
                B = b.double().transpose(-1, -2) if tb else b.double()
                c = torch.matmul(A, B)
                case(
                    f"matmul_{i}_{'t' if ta else 'n'}{'t' if tb else 'n'}",
                    "matmul",
                    {"trans_a": ta, "trans_b": tb},
                    [("a", a), ("b", b)],
                    [("c", c)],
                )


# ------------------------------------------------------------------------------ elementwise


def elementwise_cases():
    a = uniform([3, 7], -3, 3)
    b = uniform([3, 7], -3, 3)
    case("add", "add", {}, [("a", a), ("b", b)], [("y", torch.add(a.double(), b.double()))])
    case("mul", "mul", {}, [("a", a), ("b", b)], [("y", torch.mul(a.double(), b.double()))])
    alpha = f32(-0.37)
    case(
        "add_scaled",
        "add_scaled",
        {"alpha": alpha},
        [("a", a), ("b", b)],
        [("y", torch.add(a.double(), b.double(), alpha=alpha))],
    )
    alpha = f32(1.7)
    x = uniform([5, 11], -3, 3)
    case("scale", "scale", {"alpha": alpha}, [("x", x)], [("y", torch.mul(x.double(), alpha))])

    for i, (shape, axis) in enumerate(
        [([2, 3, 5, 7], 1), ([2, 3, 5, 7], 0), ([2, 3, 5, 7], 3), ([4, 7], 1), ([6], 0)]
    ):
        x = uniform(shape, -2, 2)
        bias = uniform([shape[axis]], -2, 2)
        view = [1] * len(shape)
        view[axis] = shape[axis]
        X, Bv = d(x), d(bias)
        y = X + Bv.view(view)
        case(f"bias_add_{i}", "bias_add", {"axis": axis}, [("x", x), ("bias", bias)], [("y", y)])
        dy = uniform(shape, -2, 2)
        (db,) = vjp(y, [Bv], dy)
        case(f"bias_grad_{i}", "bias_grad", {"axis": axis}, [("dy", dy)], [("db", db)])


# ------------------------------------------------------------------------------ activations


def activation_cases():
    x = uniform([4, 50], -6, 6)
    # Kinks, saturation, tiny values, a large-magnitude pair.
    special = [0.0, -0.0, 1e-4, -1e-4, 20.0, -20.0, 50.0, -50.0, 3.0, -3.0, 0.75, -0.75]
    x.view(-1)[: len(special)] = torch.tensor(special)
    dy = uniform([4, 50])
    acts = [
        ("relu", "relu", {}, F.relu),
        ("leaky_relu", "leaky_relu", {"alpha": f32(0.1)}, lambda t: F.leaky_relu(t, f32(0.1))),
        # A slope above 1: PyTorch's `x if x > 0 else alpha x`, not max(x, alpha x).
        ("leaky_relu_1.5", "leaky_relu", {"alpha": f32(1.5)}, lambda t: F.leaky_relu(t, f32(1.5))),
        ("sigmoid", "sigmoid", {}, torch.sigmoid),
        ("tanh", "tanh", {}, torch.tanh),
        ("gelu", "gelu", {}, lambda t: F.gelu(t, approximate="none")),
    ]
    for tag, name, extra, f in acts:
        X = d(x)
        y = f(X)
        params = {"act": name, **extra}
        case(f"act_{tag}", "activation", params, [("x", x)], [("y", y)])
        (dx,) = vjp(y, [X], dy)
        case(
            f"act_backward_{tag}",
            "activation_backward",
            params,
            [("x", x), ("dy", dy)],
            [("dx", dx)],
        )


# ------------------------------------------------------------------------------------- conv


def same_pads(size, k, stride):
    """TF-style 'same' (op.rs pad_before): output ceil(size/stride), extra pad at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def conv_cases():
    # (n, ci, h, w, co, kh, kw, stride, padding)
    shapes = [
        (2, 5, 9, 7, 6, 3, 3, 1, "same"),
        (2, 5, 9, 7, 6, 3, 3, 2, "same"),  # odd sizes, stride 2: pads (1, 1)
        (1, 3, 8, 6, 5, 3, 3, 2, "same"),  # even sizes, stride 2: pads (0, 1)
        (2, 3, 7, 9, 2, 3, 3, 1, "valid"),
        (1, 3, 9, 7, 6, 3, 3, 2, "valid"),
        (1, 2, 8, 8, 3, 3, 3, 2, "valid"),  # a trailing row/column no window reads
        (2, 5, 7, 9, 3, 1, 1, 1, "same"),
        (1, 6, 7, 9, 5, 1, 1, 2, "same"),
        (1, 3, 8, 8, 2, 1, 1, 2, "valid"),
        (1, 2, 6, 7, 3, 2, 2, 1, "same"),  # even kernel: all padding at the end
        (1, 2, 7, 6, 3, 4, 4, 2, "same"),
        (1, 2, 6, 5, 3, 5, 5, 1, "same"),
    ]
    for i, (n, ci, h, w, co, kh, kw, s, pad) in enumerate(shapes):
        x = uniform([n, ci, h, w])
        wt = uniform([co, ci, kh, kw])
        X, W = d(x), d(wt)
        if pad == "same":
            (pt, pb), (pl, pr) = same_pads(h, kh, s), same_pads(w, kw, s)
            Xp = F.pad(X, (pl, pr, pt, pb))
        else:
            Xp = X
        y = F.conv2d(Xp, W, stride=s, padding=0)
        oh, ow = y.shape[2], y.shape[3]
        if pad == "same":
            assert (oh, ow) == (-(-h // s), -(-w // s))
        name = f"conv_{i}_{kh}x{kw}_s{s}_{pad}_{h}x{w}"
        case(f"{name}", "conv2d", {"stride": s, "padding": pad}, [("x", x), ("w", wt)], [("y", y)])
        dy = uniform(list(y.shape))
        dx, dw = vjp(y, [X, W], dy)
        case(
            f"{name}_bwd_input",
            "conv2d_backward_input",
            {"stride": s, "padding": pad, "in_h": h, "in_w": w},
            [("dy", dy), ("w", wt)],
            [("dx", dx)],
        )
        case(
            f"{name}_bwd_weight",
            "conv2d_backward_weight",
            {"stride": s, "padding": pad, "kh": kh, "kw": kw},
            [("x", x), ("dy", dy)],
            [("dw", dw)],
        )


# --------------------------------------------------------------------- pooling, resampling


def pool_cases():
    inputs = [
        ("ties_2x3x5x7", levels([2, 3, 5, 7], 3)),  # odd sizes (floor), many ties
        ("ties_1x2x6x6", levels([1, 2, 6, 6], 2)),  # two levels: ties in most windows
        ("uniform_1x2x8x6", uniform([1, 2, 8, 6])),
        ("uniform_1x1x3x2", uniform([1, 1, 3, 2])),
        ("const_1x1x4x4", torch.full((1, 1, 4, 4), 0.5)),  # every window all ties
    ]
    for name, x in inputs:
        X = d(x)
        y = F.max_pool2d(X, 2)  # floor mode
        case(f"maxpool2_{name}", "maxpool2", {}, [("x", x)], [("y", y)])
        dy = uniform(list(y.shape))
        (dx,) = vjp(y, [X], dy)
        case(
            f"maxpool2_backward_{name}",
            "maxpool2_backward",
            {},
            [("x", x), ("y", y.detach().float()), ("dy", dy)],
            [("dx", dx)],
        )
    for i, shape in enumerate([[2, 3, 5, 7], [1, 1, 1, 1], [1, 4, 6, 3]]):
        x = uniform(shape)
        X = d(x)
        y = F.interpolate(X, scale_factor=2, mode="nearest")
        case(f"upsample2_{i}", "upsample2", {}, [("x", x)], [("y", y)])
        dy = uniform(list(y.shape))
        (dx,) = vjp(y, [X], dy)
        case(f"upsample2_backward_{i}", "upsample2_backward", {}, [("dy", dy)], [("dx", dx)])
    for i, (n, ca, cb, h, w) in enumerate([(2, 3, 1, 4, 5), (1, 2, 5, 3, 3), (3, 5, 7, 2, 3)]):
        a, b = uniform([n, ca, h, w]), uniform([n, cb, h, w])
        A, Bt = d(a), d(b)
        y = torch.cat([A, Bt], dim=1)
        case(f"concat_channels_{i}", "concat_channels", {}, [("a", a), ("b", b)], [("y", y)])
        dy = uniform(list(y.shape))
        da, db = vjp(y, [A, Bt], dy)  # split is concat's backward
        case(
            f"split_channels_{i}",
            "split_channels",
            {"first": ca},
            [("dy", dy)],
            [("da", da), ("db", db)],
        )


# ---------------------------------------------------------------------------- normalisation


def norm_cases():
    for i, (shape, eps) in enumerate(
        [([4, 3, 5, 6], 1e-5), ([8, 5], 1e-5), ([2, 3, 7], 1e-5), ([3, 4, 2, 3], 0.1)]
    ):
        eps = f32(eps)
        c = shape[1]
        x = (3.0 + 2.0 * uniform(shape).double()).float()  # an offset: statistics must not cancel
        gamma, beta = uniform([c], 0.5, 1.5), uniform([c], -0.5, 0.5)
        X, G, B = d(x), d(gamma), d(beta)
        y, mean, invstd = torch.native_batch_norm(X, G, B, None, None, True, 0.1, eps)
        # Cross-check the documented statistics: biased variance, 1/sqrt(var + eps).
        dims = [0] + list(range(2, len(shape)))
        var = X.var(dim=dims, unbiased=False)
        assert torch.allclose(invstd, 1 / torch.sqrt(var + eps), rtol=1e-12)
        assert torch.allclose(y, F.batch_norm(X, None, None, G, B, True, 0.1, eps), rtol=1e-12)
        name = f"batchnorm_{i}_{'x'.join(map(str, shape))}"
        case(
            f"{name}_train",
            "batchnorm_train",
            {"eps": eps},
            [("x", x), ("gamma", gamma), ("beta", beta)],
            [("y", y), ("mean", mean), ("invstd", invstd)],
        )
        dy = uniform(shape)
        yb = F.batch_norm(X, None, None, G, B, training=True, eps=eps)
        dx, dg, db = vjp(yb, [X, G, B], dy)
        case(
            f"{name}_backward",
            "batchnorm_backward",
            {},
            [
                ("x", x),
                ("dy", dy),
                ("gamma", gamma),
                ("mean", mean.detach().float()),
                ("invstd", invstd.detach().float()),
            ],
            [("dx", dx), ("dgamma", dg), ("dbeta", db)],
        )
        rm, rv = uniform([c], 2.0, 4.0), uniform([c], 0.5, 2.0)
        ye = F.batch_norm(
            x.double(), rm.double(), rv.double(), gamma.double(), beta.double(), False, 0.1, eps
        )
        case(
            f"{name}_eval",
            "batchnorm_eval",
            {"eps": eps},
            [("x", x), ("gamma", gamma), ("beta", beta), ("running_mean", rm), ("running_var", rv)],
            [("y", ye)],
        )

    for i, (shape, eps) in enumerate(
        [([3, 7], 1e-5), ([2, 3, 10], 1e-5), ([4, 33], 1e-5), ([5, 6], 0.1)]
    ):
        eps = f32(eps)
        dd = shape[-1]
        x = (1.0 + 3.0 * uniform(shape).double()).float()
        gamma, beta = uniform([dd], 0.5, 1.5), uniform([dd], -0.5, 0.5)
        X, G, B = d(x), d(gamma), d(beta)
        y, mean, rstd = torch.native_layer_norm(X, [dd], G, B, eps)
        assert torch.allclose(y, F.layer_norm(X, [dd], G, B, eps), rtol=1e-12)
        rows = x.numel() // dd
        name = f"layernorm_{i}_{'x'.join(map(str, shape))}"
        case(
            name,
            "layernorm",
            {"eps": eps},
            [("x", x), ("gamma", gamma), ("beta", beta)],
            [("y", y), ("mean", mean.reshape(rows)), ("invstd", rstd.reshape(rows))],
        )
        dy = uniform(shape)
        yl = F.layer_norm(X, [dd], G, B, eps)
        dx, dg, db = vjp(yl, [X, G, B], dy)
        case(
            f"{name}_backward",
            "layernorm_backward",
            {},
            [
                ("x", x),
                ("dy", dy),
                ("gamma", gamma),
                ("mean", mean.detach().reshape(rows).float()),
                ("invstd", rstd.detach().reshape(rows).float()),
            ],
            [("dx", dx), ("dgamma", dg), ("dbeta", db)],
        )

    for i, (shape, scale) in enumerate(
        [([3, 7], 5.0), ([2, 3, 16], 5.0), ([1], 1.0), ([2, 5], 40.0)]
    ):
        x = uniform(shape, -scale, scale)
        X = d(x)
        y = torch.softmax(X, dim=-1)
        case(f"softmax_{i}", "softmax", {}, [("x", x)], [("y", y)])
        dy = uniform(shape)
        # The op takes the f32 y, so the reference is torch's softmax backward kernel (what
        # autograd runs) on that y; it agrees with autograd through the exact y up to the f32
        # rounding of y.
        y32 = y.detach().float()
        dx = torch._softmax_backward_data(dy.double(), y32.double(), -1, torch.float64)
        (dx_autograd,) = vjp(y, [X], dy)
        assert torch.allclose(dx, dx_autograd, rtol=0, atol=1e-7)
        case(
            f"softmax_backward_{i}",
            "softmax_backward",
            {},
            [("y", y32), ("dy", dy)],
            [("dx", dx)],
        )


# ----------------------------------------------------------------------------------- losses


def loss_cases():
    for i, shape in enumerate([[1000], [3, 7, 5], [1]]):
        x = uniform(shape)
        case(f"sum_all_{i}", "sum_all", {}, [("x", x)], [("sum", x.double().sum().reshape(1))])

    for i, shape in enumerate([[257], [4, 9], [1]]):
        pred, target = uniform(shape, -2, 2), uniform(shape, -2, 2)
        P = d(pred)
        loss = F.mse_loss(P, target.double(), reduction="mean")
        (dp,) = torch.autograd.grad(loss, [P])
        case(
            f"mse_loss_{i}",
            "mse_loss",
            {},
            [("pred", pred), ("target", target)],
            [("loss", loss.reshape(1)), ("dpred", dp)],
        )

    for i, (shape, pw, soft) in enumerate(
        [([300], 1.0, False), ([300], 3.0, False), ([6, 7], 3.0, True), ([1], 2.5, False)]
    ):
        pw = f32(pw)
        logits = uniform(shape, -8, 8)
        flat = logits.view(-1)
        # +-30: sigmoid rounds to 0 or 1 in f32 (a log(sigmoid) form gives inf); +-100: exp
        # overflows f32 (a log1p(exp(x)) form gives inf).
        big = [30.0, -30.0, 100.0, -100.0, 0.0, 1e-3, 25.0, -25.0]
        flat[: min(len(big), flat.numel())] = torch.tensor(big[: flat.numel()])
        if soft:
            target = uniform(shape, 0, 1)
        else:
            target = levels(shape, 2)
            tf = target.view(-1)
            # Large logits with the wrong and the right label: the stable form matters.
            labels = [0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
            tf[: min(8, tf.numel())] = torch.tensor(labels[: tf.numel()])
        L = d(logits)
        loss = F.binary_cross_entropy_with_logits(
            L, target.double(), pos_weight=torch.tensor(pw, dtype=torch.float64), reduction="mean"
        )
        (dl,) = torch.autograd.grad(loss, [L])
        case(
            f"bce_with_logits_{i}_pw{pw}{'_soft' if soft else ''}",
            "bce_with_logits",
            {"pos_weight": pw},
            [("logits", logits), ("target", target)],
            [("loss", loss.reshape(1)), ("dlogits", dl)],
        )

    for i, (shape, eps) in enumerate([([200], 1.0), ([2, 1, 6, 5], 1e-3), ([3], 1.0)]):
        eps = f32(eps)
        probs, target = uniform(shape, 0, 1), levels(shape, 2)
        P = d(probs)
        T = target.double()
        # op.rs: 1 - (2 sum(p t) + eps) / (sum p + sum t + eps), over all elements.
        loss = 1 - (2 * (P * T).sum() + eps) / (P.sum() + T.sum() + eps)
        (dp,) = torch.autograd.grad(loss, [P])
        case(
            f"dice_loss_{i}",
            "dice_loss",
            {"eps": eps},
            [("probs", probs), ("target", target)],
            [("loss", loss.reshape(1)), ("dprobs", dp)],
        )


# ------------------------------------------------------------------------------- optimizers


def optimizer_run(kind, hp, n, steps, grad_scale=1.0):
    """Runs torch.optim `kind` for `steps` steps from a float32 start; returns the last step's
    gradient and the state before and after it (float32 snapshots of float64 state)."""
    p0 = uniform([n])
    P = p0.double().clone().requires_grad_(True)
    if kind == "sgd":
        opt = torch.optim.SGD([P], foreach=False, fused=False, **hp)
        names = ["momentum_buffer"]
    else:
        cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
        opt = cls([P], foreach=False, fused=False, amsgrad=False, **hp)
        names = ["exp_avg", "exp_avg_sq"]
    before = None
    for s in range(steps):
        g = (grad_scale * uniform([n]).double()).float()
        if s == steps - 1:
            st = opt.state[P]
            if st:
                before = [P.detach().float()] + [st[k].detach().float() for k in names]
            else:
                before = [P.detach().float()] + [torch.zeros(n, dtype=torch.float32) for _ in names]
            last_g = g
        P.grad = g.double()
        opt.step()
    st = opt.state[P]
    after = [P.detach().clone()] + [st[k].detach().clone() for k in names]
    step = int(st["step"]) if "step" in st else steps
    return last_g, before, after, step


def optimizer_cases():
    for i, (hp, steps) in enumerate(
        [
            ({"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1}, 1),
            ({"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1}, 5),
            ({"lr": 0.1, "momentum": 0.5, "weight_decay": 0.0}, 3),
        ]
    ):
        hp = {k: f32(v) for k, v in hp.items()}
        g, before, after, _ = optimizer_run("sgd", hp, 37, steps)
        case(
            f"sgd_{i}_step{steps}",
            "sgd",
            hp,
            [("grad", g)],
            [("param", after[0]), ("velocity", after[1])],
            init=[("param", before[0]), ("velocity", before[1])],
        )
    for i, (kind, hp, steps, gs) in enumerate(
        [
            ("adam", {"lr": 0.05, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}, 1, 1.0),
            ("adam", {"lr": 0.05, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1}, 6, 1.0),
            # eps comparable to sqrt(v): where eps goes (inside or outside the bias correction)
            # shows.
            ("adam", {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-3, "weight_decay": 0.1}, 4, 1e-3),
            ("adamw", {"lr": 0.05, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1}, 1, 1),
            ("adamw", {"lr": 0.05, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1}, 10, 1),
            ("adamw", {"lr": 0.05, "betas": (0.3, 0.9), "eps": 1e-3, "weight_decay": 0.2}, 3, 1e-3),
        ]
    ):
        b1, b2 = f32(hp["betas"][0]), f32(hp["betas"][1])
        thp = {
            "lr": f32(hp["lr"]),
            "betas": (b1, b2),
            "eps": f32(hp["eps"]),
            "weight_decay": f32(hp["weight_decay"]),
        }
        g, before, after, step = optimizer_run(kind, thp, 41, steps, gs)
        assert step == steps
        params = {
            "lr": thp["lr"],
            "beta1": b1,
            "beta2": b2,
            "eps": thp["eps"],
            "weight_decay": thp["weight_decay"],
            "decoupled": kind == "adamw",
            "step": step,
        }
        case(
            f"{kind}_{i}_step{steps}",
            "adam",
            params,
            [("grad", g)],
            [("param", after[0]), ("m", after[1]), ("v", after[2])],
            init=[("param", before[0]), ("m", before[1]), ("v", before[2])],
        )


# ---------------------------------------------------------------------- embedding, attention


def embedding_cases():
    for i, (v, dd, ids_shape) in enumerate([(10, 4, [3, 5]), (1, 1, [2]), (7, 9, [11])]):
        ids = torch.randint(0, v, tuple(ids_shape), generator=GEN)
        table = uniform([v, dd])
        y = F.embedding(ids, table.double())
        case(
            f"embedding_{i}", "embedding", {}, [("ids", ids.float()), ("table", table)], [("y", y)]
        )


def attention_cases():
    # (b, s, t, heads, dh, fully-masked batch)
    for i, (b, s, t, h, dh, full) in enumerate(
        [
            (2, 3, 5, 2, 4, False),
            (2, 7, 9, 3, 8, False),
            (3, 4, 6, 1, 5, True),
            (1, 1, 1, 1, 1, False),
        ]
    ):
        e = h * dh
        q, k, v = uniform([b, s, e], -2, 2), uniform([b, t, e], -2, 2), uniform([b, t, e])
        mask = (torch.rand(b, t, generator=GEN) > 0.3).float()
        mask[:, 0] = 1.0
        if full:
            mask[2] = 0.0  # a batch with every key masked: torch's SDPA gives zero rows
        Q = q.double().view(b, s, h, dh).transpose(1, 2)
        K = k.double().view(b, t, h, dh).transpose(1, 2)
        V = v.double().view(b, t, h, dh).transpose(1, 2)
        keep = (mask != 0).view(b, 1, 1, t)
        y = F.scaled_dot_product_attention(Q, K, V, attn_mask=keep)
        y = y.transpose(1, 2).reshape(b, s, e)
        assert torch.isfinite(y).all()
        case(
            f"attention_{i}",
            "attention",
            {"heads": h},
            [("q", q), ("k", k), ("v", v), ("mask", mask)],
            [("y", y)],
        )


def main():
    matmul_cases()
    elementwise_cases()
    activation_cases()
    conv_cases()
    pool_cases()
    norm_cases()
    loss_cases()
    optimizer_cases()
    embedding_cases()
    attention_cases()
    # One metadata key: safetensors writes several in hash order, which would make the file's
    # bytes differ from run to run.
    reference = {
        "format": "mlp-compute-torch-reference",
        "version": 1,
        "torch": torch.__version__,
        "cases": CASES,
    }
    save_file(TENSORS, OUT, metadata={"reference": json.dumps(reference, separators=(",", ":"))})
    ops = {}
    for c in CASES:
        ops[c["op"]] = ops.get(c["op"], 0) + 1
    print(f"torch {torch.__version__}: {len(CASES)} cases, {len(TENSORS)} tensors, "
          f"{os.path.getsize(OUT)} bytes -> {OUT}")
    for op, count in sorted(ops.items()):
        print(f"  {op:24} {count}")


if __name__ == "__main__":
    sys.exit(main())
