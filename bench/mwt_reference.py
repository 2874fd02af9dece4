#!/usr/bin/python3
"""bench/mwt_reference.py: MwT (modular while training, Qi et al. ICSE 2024) in PyTorch, the peer of
`mwtc examples/fashion.mwt`: trains the modular SimCNN-FM on Fashion-MNIST, modularizes it and
reports the metrics of DESIGN.md "MwT, precisely". With --standard it trains the standard SimCNN
(no masks) with the same loop instead, for the time-per-epoch comparison (bench/mwt_vs_standard).

    /usr/bin/python3 bench/mwt_reference.py [--epochs N] [--threads N] [--limit N] [--seed N]
        [--alpha A] [--beta B] [--threshold T] [--data DIR] [--standard] [--no-modularize] [--json]
        [--conv-init default|kaiming_out] [--mask-init linear|kaiming_normal]
        [--stream torch|mwtc|init|batches] [--save-params FILE.npz] [--compare CKPT|FILE.npz]
        [--load CKPT] [--device cpu|cuda]

Written for Debian's python3-torch (run it with /usr/bin/python3); numpy and torch only. The data
pipeline, the recipe and what is timed come from bench/torch_train.py (imported from it): pixels /
255, RandomCrop(28, padding 2) with the padding a raw 0 pixel, hflip, Normalize(0.2860, 0.3530);
batch 128, reshuffled each epoch, drop_last; SGD(lr 0.05, momentum 0.9, nesterov), cosine schedule
stepped per epoch; epoch_seconds = per epoch, from just before the shuffle to just after the last
optimizer step; train_images_per_s = images trained / the sum of epoch_seconds.

The model (examples/fashion.mwt; 466186 parameters, 437226 of them the standard SimCNN's):
    conv_bn(32) relu | masked: conv_bn(32) relu maxpool(2), conv_bn(64) relu,
    conv_bn(64) relu maxpool(2), conv_bn(128) relu maxpool(2) | flatten linear(256) relu linear(10)
A masked conv (the reference's MaskConvBN, src/models_cnnsplitter/utils_v2.py):
    out = relu(bn(conv(x)) * m(x)),  m(x) = relu(tanh(W2 relu(W1 gap(x)) + b2))
    W1: C_in -> H without bias, W2: H -> C_out, H = C_out if C_out < 128 else C_out // 2, b2 = 1.0;
    W1 and W2 as nn.Linear initializes them (uniform in +-1/sqrt(fan_in)), or with --mask-init
    kaiming_normal as the reference code does (kaiming_normal_: fan_in, gain sqrt 2, a std 2.45x
    larger): mwtc's `mask_init` train key, same default. The masks are soft (no straight-through).
Conv, batchnorm and linear layers keep PyTorch's default initialization (as bench/torch_train.py).

--stream mwtc replaces PyTorch's and numpy's random draws with mwtc's (bench/mwtc_stream.py): the
run starts from the weights `mwtc train --seed N` starts from, sees the same batches in the same
order with the same crops and flips, and sets each epoch's lr as mwtc computes it. Only the
arithmetic then differs; --compare prints, per parameter, the relative difference |a - b| / |b|
from an mwtc checkpoint (or a --save-params file of another run) after training. bench/mwt_lockstep
uses both to show how far apart the two programs are after 1, 2, 4, ... steps, next to how far
apart PyTorch is from itself on another thread count.
--load CKPT --epochs 0 trains nothing: it takes an mwtc checkpoint's trained parameters and
batchnorm statistics and modularizes them, so that mwtc's metrics (`mwtc report --ckpt CKPT`) and
this script's compare on the very same weights, whatever the two trajectories did.
--stream init and --stream batches take one half of it each (mwtc's initial weights with PyTorch's
batches, or the other way round), to tell which half decides where a run lands.

The loss (the reference's loss_func_cos, src/modular_trainer.py): per masked layer, the rows of the
mask matrix M (batch x C_out) normalized (F.normalize, eps 1e-12), S = M M^T, over the pairs i < j:
cohesion_l = 1 - mean(S_ij, same label), coupling_l = mean(S_ij, different labels); both averaged
over the layers; loss = cross_entropy + alpha * cohesion + beta * coupling (0.5, 1.5). The mask
generators share the model's optimizer and lr (the reference sets lr_mask = lr_model).

Modularize (timed as modularize_seconds: everything after training and the test evaluation):
  - the training images in eval mode, no augmentation; per class c and masked kernel k the
    frequency with which k's mask is > 0; module c keeps k when freq >= threshold (0.9); a layer
    that would keep none lowers its threshold by 0.05 until one survives (src/modularizer.py).
  - binary masks (mask > 0). KRR of module c = kept / 288 masked kernels; krr = mean over classes.
    cohesion = mean over classes of the mean pairwise Jaccard index (pairs i < j) of the masks of
    that class's TEST images, all masked layers concatenated, each ANDed with module c's mask;
    coupling = mean Jaccard index over the pairs c < d of module masks; J(empty, empty) = 1.
  - module c with generators kept = the modular model with every masked kernel outside module c
    switched off (its channel multiplied by 0 after the mask multiplication). recall of module c =
    on the test images of class c, the fraction where argmax of module c's logits == c.
  - modular_accuracy_raw: each test image goes to argmax_c of module c's logit for c.
    modular_accuracy: per module c a logistic regression from its 10 logits, standardized by the
    mean and (population) std over the calibration set, to "label == c", fitted on min(2000, n)
    training images spread evenly over the training set (indices i * n // 2000) by Newton's method
    (mean log-loss + 1e-3/2 |w|^2, the bias unpenalized, at most 25 steps; as mwtc's
    mod_calib_fit); each test image goes to the class with the highest calibrated probability.
  - accuracy: the test accuracy of the modular model as trained (all kernels, soft masks).
"""
import argparse
import copy
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import (BATCH, LR, MOMENTUM, EXPECTED_PARAMS, Augmenter, conv_bn, evaluate,  # noqa: E402
                         epoch_batches, normalize, prepare, simcnn_standard)
import mwtc_stream  # noqa: E402
import torch_train  # noqa: E402  (its DEVICE, set by --device)

EXPECTED_MODULAR_PARAMS = 466186
CALIB_IMAGES = 2000
CALIB_L2 = 1e-3


class MaskGenerator(nn.Module):
    kaiming_normal = False                         # --mask-init kaiming_normal

    def __init__(self, cin, cout):
        super().__init__()
        hidden = cout if cout < 128 else cout // 2
        self.fc1 = nn.Linear(cin, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, cout)
        if self.kaiming_normal:
            nn.init.kaiming_normal_(self.fc1.weight)
            nn.init.kaiming_normal_(self.fc2.weight)
        nn.init.constant_(self.fc2.bias, 1.0)

    detach = False                                 # --gen-input detached: no gradient into x this way

    def forward(self, x):
        g = (x.detach() if self.detach else x).mean(dim=(2, 3))   # global average pooling of the conv's input
        return torch.relu(torch.tanh(self.fc2(torch.relu(self.fc1(g)))))


class MaskedConvBN(nn.Module):
    """relu(bn(conv(x)) * mask(x)); `keep` (None or a 0/1 vector) switches kernels off for a module."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv, self.bn = conv_bn(cin, cout)
        self.gen = MaskGenerator(cin, cout)
        self.keep = None
        self.mask = None

    def forward(self, x):
        out = self.bn(self.conv(x))
        self.mask = self.gen(x)
        m = self.mask if self.keep is None else self.mask * self.keep
        return torch.relu(out * m[:, :, None, None])


class ModularSimCNN(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(*conv_bn(1, 32), nn.ReLU())
        self.m1 = MaskedConvBN(32, 32)
        self.m2 = MaskedConvBN(32, 64)
        self.m3 = MaskedConvBN(64, 64)
        self.m4 = MaskedConvBN(64, 128)
        self.fc1 = nn.Linear(128 * 3 * 3, 256)
        self.fc2 = nn.Linear(256, classes)
        self.masked = [self.m1, self.m2, self.m3, self.m4]

    def forward(self, x):
        y = self.stem(x)
        y = F.max_pool2d(self.m1(y), 2)
        y = self.m2(y)
        y = F.max_pool2d(self.m3(y), 2)
        y = F.max_pool2d(self.m4(y), 2)
        y = torch.relu(self.fc1(torch.flatten(y, 1)))
        return self.fc2(y)

    def masks(self):
        return [m.mask for m in self.masked]

    def layer_sizes(self):
        return [m.conv.out_channels for m in self.masked]

    def set_module(self, keep):
        """keep: None (all kernels) or a 0/1 numpy vector over all masked kernels."""
        off = 0
        for m in self.masked:
            n = m.conv.out_channels
            m.keep = None if keep is None else torch.from_numpy(keep[off:off + n].astype(np.float32)).to(
                torch_train.DEVICE)
            off += n


def mask_losses(masks, y):
    """The reference's loss_func_cos: (cohesion, coupling), each the mean over the layers."""
    same = (y[:, None] == y[None, :]).float()
    upper = torch.triu(torch.ones_like(same), diagonal=1)
    w_same, w_diff = same * upper, (1.0 - same) * upper
    n_same, n_diff = w_same.sum(), w_diff.sum()
    coh, cpl = 0.0, 0.0
    for m in masks:
        mn = F.normalize(m, p=2, dim=1)
        s = mn @ mn.t()
        coh = coh + (1.0 - (s * w_same).sum() / n_same)
        cpl = cpl + (s * w_diff).sum() / n_diff
    return coh / len(masks), cpl / len(masks)


@torch.no_grad()
def forward_all(model, images, batch=250, want_masks=False):
    """Eval-mode logits (n x classes, float32) and optionally the binary masks (n x kernels, bool)."""
    model.eval()
    logits, bins = [], []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(normalize(images[i:i + batch])).unsqueeze(1).to(torch_train.DEVICE)
        logits.append(model(x).cpu().numpy())
        if want_masks:
            bins.append(torch.cat(model.masks(), dim=1).gt(0).cpu().numpy())
    return np.concatenate(logits), (np.concatenate(bins) if want_masks else None)


def module_masks(freq, sizes, threshold):
    """freq [classes][kernels] -> keep [classes][kernels] (uint8) with the per-layer fallback."""
    keep = np.zeros(freq.shape, dtype=np.uint8)
    for c in range(freq.shape[0]):
        off = 0
        for n in sizes:
            f = freq[c, off:off + n]
            t = threshold
            while True:
                k = f >= t - 1e-12
                if k.any() or t <= 0:
                    break
                t -= 0.05
            keep[c, off:off + n] = k
            off += n
    return keep


def pairwise_jaccard_mean(b):
    """Mean Jaccard index over the pairs i < j of the rows of the 0/1 matrix b; J(empty, empty) = 1."""
    n = b.shape[0]
    if n < 2:
        return 1.0
    b = b.astype(np.float64)
    inter = b @ b.T
    size = b.sum(axis=1)
    union = size[:, None] + size[None, :] - inter
    j = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    iu = np.triu_indices(n, k=1)
    return float(j[iu].mean())


def sigmoid(s):
    return np.where(s >= 0, 1.0 / (1.0 + np.exp(-np.abs(s))), np.exp(-np.abs(s)) / (1.0 + np.exp(-np.abs(s))))


def calib_fit(z, y):
    """Logistic regression from logits z [n][d] to y (0/1) on standardized inputs; Newton, L2 on w."""
    z = z.astype(np.float64)
    n, d = z.shape
    mean = z.mean(axis=0)
    var = (z * z).mean(axis=0) - mean * mean
    std = np.where(var > 1e-12, np.sqrt(np.maximum(var, 0)), 1.0)
    x = np.hstack([(z - mean) / std, np.ones((n, 1))])
    w = np.zeros(d + 1)
    reg = np.full(d + 1, CALIB_L2)
    reg[d] = 0.0
    y = y.astype(np.float64)
    for _ in range(25):
        p = sigmoid(x @ w)
        g = x.T @ (p - y) / n + reg * w
        h = (x * (p * (1 - p))[:, None]).T @ x / n + np.diag(reg) + 1e-9 * np.eye(d + 1)
        w = w - np.linalg.solve(h, g)
        if g @ g < 1e-14:
            break
    return mean, std, w


def calib_score(cal, z):
    mean, std, w = cal
    x = (z.astype(np.float64) - mean) / std
    return sigmoid(x @ w[:-1] + w[-1])


def modularize(model, xtr, ytr, xte, yte, threshold, classes=10, freq_out=None):
    sizes = model.layer_sizes()
    kernels = sum(sizes)
    model.set_module(None)
    # 1. kernel frequencies per class over the training images (eval mode, no augmentation)
    _, btr = forward_all(model, xtr, want_masks=True)
    freq = np.zeros((classes, kernels))
    for c in range(classes):
        rows = btr[ytr == c]
        if len(rows):
            freq[c] = rows.mean(axis=0)
    if freq_out is not None:
        freq_out.append(freq)
    keep = module_masks(freq, sizes, threshold)
    # 2. metrics on binary masks; cohesion on the test images' masks
    _, bte = forward_all(model, xte, want_masks=True)
    kept = keep.sum(axis=1)
    cohesion = float(np.mean([pairwise_jaccard_mean(bte[yte == c] & keep[c].astype(bool))
                              for c in range(classes)]))
    coupling = float(np.mean([pairwise_jaccard_mean(keep[[c, d]])
                              for c in range(classes) for d in range(c + 1, classes)]))
    # 3. the modules (generators kept, kernels outside switched off): recall, raw and calibrated composition
    ncal = min(CALIB_IMAGES, len(xtr))
    cal_idx = np.array([i * len(xtr) // ncal for i in range(ncal)], dtype=np.int64)
    xcal, ycal = xtr[cal_idx], ytr[cal_idx]
    raw = np.zeros((len(xte), classes))
    prob = np.zeros((len(xte), classes))
    modules = []
    for c in range(classes):
        model.set_module(keep[c])
        lt, _ = forward_all(model, xte)
        lc, _ = forward_all(model, xcal)
        own = yte == c
        recall = float((lt[own].argmax(axis=1) == c).mean()) if own.any() else 0.0
        raw[:, c] = lt[:, c]
        prob[:, c] = calib_score(calib_fit(lc, ycal == c), lt)
        modules.append({"class": c, "kernels": int(kept[c]), "krr": round(float(kept[c]) / kernels, 4),
                        "recall": round(recall, 4)})
    model.set_module(None)
    return {
        "modular_accuracy": float((prob.argmax(axis=1) == yte).mean()),
        "modular_accuracy_raw": float((raw.argmax(axis=1) == yte).mean()),
        "krr": float(np.mean(kept / kernels)), "cohesion": cohesion, "coupling": coupling,
        "masked_kernels": kernels, "threshold": threshold, "calibration_images": ncal, "modules": modules,
    }


def compare(model, path):
    """Per parameter |a - b| / |b| between this model and an mwtc checkpoint or a .npz of names."""
    if path.endswith(".npz"):
        other = dict(np.load(path).items())
    else:
        other = {k[len("param/"):]: v for k, v in mwtc_stream.read_ckpt(path).items() if k.startswith("param/")}
    worst = ("", 0.0)
    for name, p in mwtc_stream.named_params(model):
        if name not in other:
            sys.exit("mwt_reference.py: %s has no parameter %s" % (path, name))
        b = other[name].astype(np.float64)
        d = float(np.linalg.norm(p.detach().cpu().numpy().astype(np.float64) - b) / max(np.linalg.norm(b), 1e-30))
        # a conv bias ahead of a batchnorm gets a zero gradient but for rounding: it says nothing
        print("  %-12s relative difference %.3e" % (name, d), file=sys.stderr)
        if d > worst[1] and not (name.startswith("conv") and name.endswith(".b")):
            worst = (name, d)
    print("compare %s: largest relative difference %.3e (%s; conv biases ahead of a batchnorm left out)"
          % (path, worst[1], worst[0]), file=sys.stderr, flush=True)


def load_ckpt(model, path):
    """An mwtc checkpoint's trained parameters (param/NAME) and batchnorm running statistics
    (state/bnN.mean, state/bnN.var) into the model, by mwtc's names (mwtc_stream.named_params)."""
    t = mwtc_stream.read_ckpt(path)
    with torch.no_grad():
        for name, p in mwtc_stream.named_params(model):
            v = t.get("param/" + name)
            if v is None or v.size != p.numel():
                sys.exit("mwt_reference.py: %s has no parameter %s of %d values" % (path, name, p.numel()))
            p.copy_(torch.from_numpy(v.reshape(p.shape)))
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        for i, bn in enumerate(bns, 1):
            for key, buf in (("mean", bn.running_mean), ("var", bn.running_var)):
                v = t.get("state/bn%d.%s" % (i, key))
                if v is None or v.size != buf.numel():
                    sys.exit("mwt_reference.py: %s has no state/bn%d.%s" % (path, i, key))
                buf.copy_(torch.from_numpy(v.reshape(buf.shape)))


def main():
    ap = argparse.ArgumentParser(description="MwT in PyTorch: the peer of mwtc examples/fashion.mwt")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--limit", type=int, default=0, help="use the first N training images")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--alpha", type=float, default=0.5, help="cohesion weight (default 0.5)")
    ap.add_argument("--beta", type=float, default=1.5, help="coupling weight (default 1.5)")
    ap.add_argument("--threshold", type=float, default=0.9, help="modularize threshold (default 0.9)")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--standard", action="store_true", help="train the standard SimCNN (no masks) instead")
    ap.add_argument("--no-modularize", action="store_true",
                    help="train and evaluate only (bench/mwt_vs_standard times the training loop)")
    ap.add_argument("--json", action="store_true", help="print one JSON object at the end")
    ap.add_argument("--conv-init", choices=["default", "kaiming_out"], default="default",
                    help="kaiming_out: every conv's weights kaiming_normal_(mode fan_out, relu) and bias 0, as the "
                         "reference's SimCNN (src/models_cnnsplitter/simcnn_masked.py) initializes them; default: "
                         "PyTorch's, as mwtc and bench/torch_train.py")
    ap.add_argument("--gen-input", choices=["attached", "detached"], default="attached",
                    help="detached: the mask generators read their input without passing gradients back into it "
                         "(an experiment; DESIGN.md and the reference pass them: attached)")
    ap.add_argument("--mask-init", choices=["linear", "kaiming_normal"], default="linear",
                    help="how the mask generators' weights start (mwtc's train key mask_init): linear, as nn.Linear "
                         "(the default); kaiming_normal, as the reference code (src/models_cnnsplitter/utils_v2.py)")
    ap.add_argument("--stream", choices=["torch", "mwtc", "init", "batches"], default="torch",
                    help="mwtc: initial weights, shuffle, crops and flips drawn as `mwtc train --seed N` draws them, "
                         "and mwtc's lr per epoch (bench/mwtc_stream.py); torch: PyTorch's and numpy's own draws; "
                         "init: mwtc's initial weights, the rest PyTorch's; batches: PyTorch's initial weights, the "
                         "rest (batches, lr) mwtc's")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="cuda: train and modularize on the GPU, TF32 off (float32 as on the CPU); its "
                         "figures of merit compare, its times do not (no CPU peer to take a ratio with)")
    ap.add_argument("--save-params", metavar="FILE.npz", help="write the trained parameters (mwtc's names)")
    ap.add_argument("--compare", metavar="CKPT|FILE.npz",
                    help="after training, print each parameter's relative difference from this mwtc checkpoint "
                         "or --save-params file")
    ap.add_argument("--load", metavar="CKPT",
                    help="start from an mwtc checkpoint's parameters and batchnorm statistics; with --epochs 0 "
                         "only evaluate and modularize them")
    a = ap.parse_args()
    if a.stream != "torch" and a.conv_init != "default":
        ap.error("--stream mwtc draws the weights as mwtc does: --conv-init must stay default")
    if a.device == "cuda":
        if not torch.cuda.is_available():
            ap.error("--device cuda: this PyTorch sees no CUDA device")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch_train.DEVICE = torch.device("cuda")
    MaskGenerator.detach = a.gen_input == "detached"
    MaskGenerator.kaiming_normal = a.mask_init == "kaiming_normal"
    if a.epochs < (0 if a.load else 1) or a.threads < 1 or a.limit < 0:
        ap.error("--epochs (0 with --load) and --threads must be >= 1, --limit >= 0")
    if not 0.0 < a.threshold <= 1.0:
        ap.error("--threshold must be in (0, 1]")

    rng, xtr, ytr, xte, yte, n, steps = prepare(a, "mwt_reference.py")

    modular = not a.standard
    model = ModularSimCNN(10) if modular else simcnn_standard(10)
    if a.conv_init == "kaiming_out":
        for mod in model.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
                if mod.bias is not None:
                    nn.init.constant_(mod.bias, 0)
    stream = None                                      # mwtc's batches and lr, when not None
    if a.stream != "torch":
        rng_m = mwtc_stream.MwtcRng(a.seed)
        # "batches": the draws of the weights on a copy, so the batches are mwtc's and the weights PyTorch's
        mwtc_stream.init_params(copy.deepcopy(model) if a.stream == "batches" else model, rng_m,
                                a.mask_init if modular else "linear")
        if a.stream != "init":
            stream = rng_m
            batches = mwtc_stream.Batches(xtr, ytr, stream)
    if a.load:
        load_ckpt(model, a.load)
    model.to(torch_train.DEVICE)                       # after the draws: they fill CPU tensors
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    expected = EXPECTED_MODULAR_PARAMS if modular else EXPECTED_PARAMS
    if params != expected:
        print("mwt_reference.py: warning: %d parameters, expected %d" % (params, expected), file=sys.stderr)
    if not a.json:
        print("pytorch %s, %d threads, %s SimCNN, %d parameters, %d training images (%d batches of %d), %d epochs%s"
              % (torch.__version__, a.threads, "modular" if modular else "standard", params, n, steps, BATCH,
                 a.epochs, ", alpha %g beta %g, mask_init %s" % (a.alpha, a.beta, a.mask_init) if modular else ""))

    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=a.epochs)
    aug = None if stream else Augmenter(xtr, rng)   # --stream mwtc: mwtc_stream.Batches cuts the windows
    ytr_t = torch.from_numpy(ytr)

    epoch_seconds = []
    last = {}
    for epoch in range(a.epochs):
        if stream:                                     # compiler/run_train.c schedule_lr, in doubles
            for g in opt.param_groups:
                g["lr"] = LR * 0.5 * (1.0 + math.cos(math.pi * epoch / a.epochs))
        lr = opt.param_groups[0]["lr"]
        model.train()
        tot = torch.zeros(4, dtype=torch.float64, device=torch_train.DEVICE)  # loss, ce, cohesion, coupling
        t0 = time.perf_counter()                       # timed: shuffle + batch prep + train steps
        for x, y in (batches.epoch(n, steps, BATCH) if stream else epoch_batches(rng, aug, ytr_t, n, steps)):
            x, y = x.to(torch_train.DEVICE), y.to(torch_train.DEVICE)
            opt.zero_grad(set_to_none=True)
            ce = F.cross_entropy(model(x), y)
            if modular:
                coh, cpl = mask_losses(model.masks(), y)
                loss = ce + a.alpha * coh + a.beta * cpl
                tot += torch.stack([loss.detach(), ce.detach(), coh.detach(), cpl.detach()]).double()
            else:
                loss = ce
                tot[0] += loss.detach().double()
            loss.backward()
            opt.step()
        secs = time.perf_counter() - t0                # end of the timed part
        epoch_seconds.append(secs)
        last = dict(zip(["loss", "loss_ce", "loss_cohesion", "loss_coupling"], (tot / steps).tolist()))
        sched.step()
        if not a.json:
            acc = evaluate(model, xte, yte)
            extra = ("  (ce %.4f cohesion %.4f coupling %.4f)" % (last["loss_ce"], last["loss_cohesion"],
                                                                  last["loss_coupling"])) if modular else ""
            print("epoch %d/%d  lr %.5f  loss %.4f%s  test accuracy %.4f  %.1f s  %.0f images/s"
                  % (epoch + 1, a.epochs, lr, last["loss"], extra, acc, secs, steps * BATCH / secs), flush=True)

    acc = evaluate(model, xte, yte)
    if a.save_params:
        np.savez(a.save_params, **{k: p.detach().cpu().numpy() for k, p in mwtc_stream.named_params(model)})
    if a.compare:
        compare(model, a.compare)
    ips = a.epochs * steps * BATCH / sum(epoch_seconds) if epoch_seconds else 0.0
    out = {
        "framework": "pytorch", "version": torch.__version__, "model": "simcnn" if modular else "simcnn_standard",
        "threads": a.threads, "epochs": a.epochs, "params": params, "train_images": n, "batch": BATCH,
        "train_images_per_s": round(ips, 2), "epoch_seconds": [round(s, 3) for s in epoch_seconds],
        "accuracy": acc, "loss": round(last["loss"], 6) if last else None,
    }
    if modular:
        out.update({k: round(v, 6) for k, v in last.items() if k != "loss"})
        out.update({"alpha": a.alpha, "beta": a.beta, "mask_init": a.mask_init})
    if modular and not a.no_modularize:
        t0 = time.perf_counter()
        freq = []
        r = modularize(model, xtr, ytr, xte, yte, a.threshold, freq_out=freq)
        if a.load:   # the kernel frequencies mwtc stored with the same weights, against these
            theirs = mwtc_stream.read_ckpt(a.load).get("mwt/freq")
            if theirs is not None and theirs.shape == freq[0].shape:
                d = np.abs(freq[0] - theirs)
                print("kernel frequencies against %s's mwt/freq: largest difference %.6f, %d of %d differ by more "
                      "than 1e-4" % (a.load, d.max(), int((d > 1e-4).sum()), d.size), file=sys.stderr)
        out["modularize_seconds"] = round(time.perf_counter() - t0, 3)
        for k in ("modular_accuracy", "modular_accuracy_raw", "krr", "cohesion", "coupling"):
            r[k] = round(r[k], 4)
        out.update(r)
    if a.json:
        print(json.dumps(out))
        return
    print("test accuracy %.4f, %.0f training images/s over %d epochs (%.1f s, %.2f s per epoch)"
          % (acc, ips, a.epochs, sum(epoch_seconds), sum(epoch_seconds) / max(a.epochs, 1)))
    if "modules" in out:
        print("modularized (threshold %g) in %.1f s: %d masked kernels, krr %.4f, cohesion %.4f, coupling %.4f"
              % (a.threshold, out["modularize_seconds"], out["masked_kernels"], out["krr"], out["cohesion"],
                 out["coupling"]))
        print("  modules composed: %.2f%% calibrated, %.2f%% by raw logits (modular model: %.2f%%)"
              % (100 * out["modular_accuracy"], 100 * out["modular_accuracy_raw"], 100 * acc))
        for m in out["modules"]:
            print("  module %d: %3d kernels  krr %.4f  own-class recall %.4f"
                  % (m["class"], m["kernels"], m["krr"], m["recall"]))


if __name__ == "__main__":
    main()
