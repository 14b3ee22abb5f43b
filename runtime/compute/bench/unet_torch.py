#!/usr/bin/env python3
"""The U-Net of `mlp bench unet`, layer for layer, in PyTorch: same data, initialisation scheme,
loss, optimizer and schedule, so final loss and IoU can be set side by side (and step time).

    python3 runtime/compute/bench/unet_torch.py --data DIR [--device cuda|cpu] [--epochs 10] [--json]

Model (mlp-compute `model::unet`, batch norm on, sigmoid head): per level, two units of
conv3x3 (no bias) -> BatchNorm2d(eps 1e-5, momentum 0.1) -> ReLU; 2x2 max-pool down; a
bottleneck block; up: nearest 2x upsampling -> one unit -> concat(skip, up) -> block; head
conv1x1 with bias. Init: kaiming-uniform, bound = gain * sqrt(3 / fan_in), gain sqrt(2) for
convs before ReLU and 1 for the head; biases 0. Loss: BCEWithLogits(pos_weight 3) + 2 * soft
Dice(sigmoid, eps 1) over the batch. Adam(lr, betas 0.9/0.999, eps 1e-8), cosine decay per step
to 1e-5; batch 8; the last partial batch skipped; IoU at 0.5 on the validation set. TF32 is off.
"""
import argparse, glob, json, math, os, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

def load(d):
    xs, ys = [], []
    for c in sorted(glob.glob(os.path.join(d, "*.cube.npy"))):
        xs.append(np.load(c).astype(np.float32))
        ys.append((np.load(c.replace(".cube.npy", ".labels.npy")) > 0).astype(np.float32))
    x, y = np.concatenate(xs), np.concatenate(ys)
    return torch.from_numpy(x[:, None]), torch.from_numpy(y[:, None])

def unit(cin, cout):
    conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
    bound = math.sqrt(2.0) * math.sqrt(3.0 / (cin * 9))
    nn.init.uniform_(conv.weight, -bound, bound)
    return nn.Sequential(conv, nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1), nn.ReLU())

class UNet(nn.Module):
    def __init__(self, depth=3, base=8):
        super().__init__()
        self.depth = depth
        self.enc = nn.ModuleList()
        cin = 1
        for l in range(depth):
            self.enc.append(nn.Sequential(unit(cin, base << l), unit(base << l, base << l)))
            cin = base << l
        self.bottleneck = nn.Sequential(unit(cin, base << depth), unit(base << depth, base << depth))
        self.upconv, self.dec = nn.ModuleList(), nn.ModuleList()
        cur = base << depth
        for l in reversed(range(depth)):
            ch = base << l
            self.upconv.append(unit(cur, ch))
            self.dec.append(nn.Sequential(unit(2 * ch, ch), unit(ch, ch)))
            cur = ch
        self.head = nn.Conv2d(cur, 1, 1)
        b = math.sqrt(3.0 / cur)
        nn.init.uniform_(self.head.weight, -b, b)
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        skips = []
        for e in self.enc:
            x = e(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.upconv, self.dec, reversed(skips)):
            x = up(F.interpolate(x, scale_factor=2, mode="nearest"))
            x = dec(torch.cat([skip, x], 1))
        return self.head(x)

def loss_fn(logits, t, pos_weight):
    bce = F.binary_cross_entropy_with_logits(logits, t, pos_weight=pos_weight)
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
    return bce + 2 * dice

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--base-channels", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    xt, yt = load(os.path.join(a.data, "train"))
    xv, yv = load(os.path.join(a.data, "val"))
    xt, yt, xv, yv = xt.to(dev), yt.to(dev), xv.to(dev), yv.to(dev)
    model = UNet(a.depth, a.base_channels).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    steps = len(xt) // a.batch
    total = steps * a.epochs
    pw = torch.tensor(3.0, device=dev)
    g = torch.Generator().manual_seed(a.seed)
    epochs, step = [], 0
    for epoch in range(a.epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=g).to(dev)
        t0, tl = time.perf_counter(), 0.0
        for s in range(steps):
            lr = 1e-5 + (a.lr - 1e-5) * 0.5 * (1 + math.cos(math.pi * step / total))
            for grp in opt.param_groups:
                grp["lr"] = lr
            idx = perm[s * a.batch:(s + 1) * a.batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xt[idx]), yt[idx], pw)
            loss.backward()
            opt.step()
            tl += loss.item()
            step += 1
        if dev.type == "cuda":
            torch.cuda.synchronize()
        secs = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(xv[i:i + 64]) for i in range(0, len(xv), 64)])
            vloss = loss_fn(logits, yv, pw).item()
            pred = logits > 0
            inter = (pred & (yv > 0.5)).sum().item()
            union = (pred | (yv > 0.5)).sum().item()
            iou = inter / union if union else 1.0
            acc = (pred == (yv > 0.5)).float().mean().item()
        e = {"epoch": epoch + 1, "train_loss": tl / steps, "val_loss": vloss, "iou": iou,
             "pixel_accuracy": acc, "seconds": secs, "seconds_per_step": secs / steps}
        epochs.append(e)
        if not a.json:
            print(f"epoch {epoch + 1:>3}: loss {e['train_loss']:.6f}, val loss {vloss:.6f}, IoU {iou:.4f}, "
                  f"pixel acc {acc:.4f} ({secs:.2f} s)")
    out = {"framework": "pytorch " + torch.__version__, "device": str(dev), "train_images": len(xt),
           "val_images": len(xv), "batch": a.batch, "final_train_loss": epochs[-1]["train_loss"],
           "final_val_iou": epochs[-1]["iou"], "epochs": epochs}
    print(json.dumps(out, indent=2) if a.json else f"final: train loss {out['final_train_loss']:.5f}, val IoU {out['final_val_iou']:.4f}")

if __name__ == "__main__":
    main()
