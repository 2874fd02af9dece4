#!/usr/bin/python3
"""bench/torch_train.py: the PyTorch peer of `mwtc train examples/fashion_standard.mwt`.

Trains the standard SimCNN of examples/fashion_standard.mwt on Fashion-MNIST with the same recipe
and reports throughput and test accuracy. Written for Debian's python3-torch (1.13; run it with
/usr/bin/python3) and works with a newer PyPI torch as well. Needs numpy and torch only (no
torchvision): the IDX files are read directly.

    /usr/bin/python3 bench/torch_train.py [--epochs N] [--threads N] [--limit N] [--seed N]
                                          [--data DIR] [--json]

The model (nn/blocks.mwt: conv_bn(out) = conv(out, k = 3, pad = 1, bias = true) batchnorm):
    conv_bn(32) relu, conv_bn(32) relu maxpool(2), conv_bn(64) relu, conv_bn(64) relu maxpool(2),
    conv_bn(128) relu maxpool(2), flatten, linear(256) relu, linear(10)      -> 437226 parameters
PyTorch's default initialization.

The recipe (as mwtc runs it, runtime/rt_data_batch.c and the train statement):
  - pixels / 255, then random crop with padding 2, then horizontal flip with p = 0.5, then
    normalize (v - 0.2860) / 0.3530. This is torchvision's ToTensor, RandomCrop(28, padding=2),
    RandomHorizontalFlip(), Normalize order: the padding is a raw pixel 0, so after normalization
    a padded pixel is (0 - 0.2860) / 0.3530 = -0.810, not 0. mwtc does exactly this ("the zero
    padding is a raw pixel 0, normalized like every other pixel", runtime/rt_data.h), so we do too.
    Crop offsets and flips are drawn independently per image, vectorized per batch in numpy.
  - batch 128, reshuffled every epoch, the last partial batch dropped (mwtc drops it too).
  - SGD(lr 0.05, momentum 0.9, nesterov, weight_decay 0), cross-entropy (mean over the batch).
  - cosine schedule stepped per epoch: CosineAnnealingLR(T_max = epochs), i.e. the lr of epoch e
    (0-based) is 0.05 * (1 + cos(pi * e / epochs)) / 2.

What is timed (epoch_seconds, train_images_per_s): for each epoch, from just before the shuffle to
just after the last optimizer step: the shuffle, the batch preparation (gather, crop, flip,
normalize, numpy -> tensor) and the training steps (forward, loss, backward, optimizer step).
Not timed: reading the files, building the model, the lr scheduler step, the evaluation.
train_images_per_s = images trained over all epochs / the sum of epoch_seconds.
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

MEAN, STD = 0.2860, 0.3530
PAD = 2
BATCH = 128
LR, MOMENTUM = 0.05, 0.9
EXPECTED_PARAMS = 437226
DEVICE = torch.device("cpu")  # mwt_reference.py --device cuda moves the model and every batch there


def read_idx(directory, name):
    """One IDX file, plain or gzipped (name or name.gz), as a numpy array of its declared shape."""
    path = os.path.join(directory, name)
    if os.path.exists(path):
        with open(path, "rb") as f:
            data = f.read()
    elif os.path.exists(path + ".gz"):
        with gzip.open(path + ".gz", "rb") as f:
            data = f.read()
    else:
        sys.exit("torch_train.py: error: %s: neither it nor %s.gz exists" % (path, name))
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        sys.exit("torch_train.py: error: %s: not an IDX file of unsigned bytes" % path)
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    off = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(data) - off < count:
        sys.exit("torch_train.py: error: %s: truncated (%d bytes of %d)" % (path, len(data) - off, count))
    return np.frombuffer(data, dtype=np.uint8, count=count, offset=off).reshape(dims)


def load(directory):
    xtr = read_idx(directory, "train-images-idx3-ubyte")
    ytr = read_idx(directory, "train-labels-idx1-ubyte")
    xte = read_idx(directory, "t10k-images-idx3-ubyte")
    yte = read_idx(directory, "t10k-labels-idx1-ubyte")
    assert xtr.shape[1:] == (28, 28) and xte.shape[1:] == (28, 28), "expected 28x28 images"
    assert len(xtr) == len(ytr) and len(xte) == len(yte)
    return xtr, ytr.astype(np.int64), xte, yte.astype(np.int64)


def conv_bn(cin, cout):
    return [nn.Conv2d(cin, cout, kernel_size=3, stride=1, padding=1, bias=True), nn.BatchNorm2d(cout)]


def simcnn_standard(classes=10):
    return nn.Sequential(
        *conv_bn(1, 32), nn.ReLU(),
        *conv_bn(32, 32), nn.ReLU(), nn.MaxPool2d(2),
        *conv_bn(32, 64), nn.ReLU(),
        *conv_bn(64, 64), nn.ReLU(), nn.MaxPool2d(2),
        *conv_bn(64, 128), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(128 * 3 * 3, 256), nn.ReLU(),
        nn.Linear(256, classes),
    )


def normalize(u8):
    """uint8 images -> float32 (v / 255 - mean) / std."""
    return (u8.astype(np.float32) * np.float32(1.0 / 255.0) - np.float32(MEAN)) / np.float32(STD)


class Augmenter:
    """RandomCrop(28, padding=2) then RandomHorizontalFlip(0.5), per image, on raw bytes.

    The training images are padded once with raw 0 bytes (32x32); a batch is one fancy-indexing
    gather of each image's 28x28 window, with the columns reversed for the flipped images."""

    def __init__(self, images, rng):
        self.padded = np.pad(images, ((0, 0), (PAD, PAD), (PAD, PAD)), mode="constant", constant_values=0)
        self.rng = rng
        self.h, self.w = images.shape[1], images.shape[2]
        self.ar_h = np.arange(self.h)
        self.ar_w = np.arange(self.w)

    def batch(self, idx):
        n = len(idx)
        top = self.rng.integers(0, 2 * PAD + 1, size=n)
        left = self.rng.integers(0, 2 * PAD + 1, size=n)
        flip = self.rng.random(n) < 0.5
        return normalize(self.crops(idx, top, left, flip))

    def crops(self, idx, top, left, flip):
        """The raw bytes of the windows at (top, left) of the padded images, flipped where asked."""
        rows = top[:, None] + self.ar_h[None, :]                                   # n x H
        cols = left[:, None] + np.where(flip[:, None], self.ar_w[::-1], self.ar_w)  # n x W
        return self.padded[idx[:, None, None], rows[:, :, None], cols[:, None, :]]  # n x H x W


def evaluate(model, xte, yte, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(xte), batch):
            x = torch.from_numpy(normalize(xte[i:i + batch])).unsqueeze(1).to(DEVICE)
            pred = model(x).argmax(dim=1).cpu()
            correct += int((pred == torch.from_numpy(yte[i:i + batch])).sum())
    return correct / len(xte)


def prepare(a, prog):
    """Threads, seeds and data as the recipe has them (a: the parsed --threads, --seed, --data,
    --limit): returns rng, xtr, ytr, xte, yte, n training images, steps (full batches, drop_last)."""
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    xtr, ytr, xte, yte = load(a.data)
    if a.limit:
        xtr, ytr = xtr[:a.limit], ytr[:a.limit]
    n = len(xtr)
    steps = n // BATCH  # drop_last
    if steps == 0:
        sys.exit("%s: error: %d training images make no full batch of %d" % (prog, n, BATCH))
    return rng, xtr, ytr, xte, yte, n, steps


def epoch_batches(rng, aug, ytr_t, n, steps):
    """One epoch's batches, reshuffled: (x [BATCH, 1, 28, 28] augmented and normalized, y [BATCH])."""
    perm = rng.permutation(n)
    for s in range(steps):
        idx = perm[s * BATCH:(s + 1) * BATCH]
        yield torch.from_numpy(aug.batch(idx)).unsqueeze(1), ytr_t[torch.from_numpy(idx)]


def main():
    ap = argparse.ArgumentParser(description="PyTorch peer of mwtc train examples/fashion_standard.mwt")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--limit", type=int, default=0, help="use the first N training images")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--json", action="store_true", help="print one JSON object at the end")
    a = ap.parse_args()
    if a.epochs < 1 or a.threads < 1 or a.limit < 0:
        ap.error("--epochs and --threads must be >= 1, --limit >= 0")

    rng, xtr, ytr, xte, yte, n, steps = prepare(a, "torch_train.py")

    model = simcnn_standard(10)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if params != EXPECTED_PARAMS:
        print("torch_train.py: warning: %d parameters, expected %d" % (params, EXPECTED_PARAMS), file=sys.stderr)
    if not a.json:
        print("pytorch %s, %d threads, %d parameters, %d training images (%d batches of %d), %d epochs"
              % (torch.__version__, a.threads, params, n, steps, BATCH, a.epochs))

    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=a.epochs)
    loss_fn = nn.CrossEntropyLoss()
    aug = Augmenter(xtr, rng)
    ytr_t = torch.from_numpy(ytr)

    epoch_seconds = []
    last_loss = float("nan")
    for epoch in range(a.epochs):
        lr = opt.param_groups[0]["lr"]
        model.train()
        total = torch.zeros((), dtype=torch.float64)
        t0 = time.perf_counter()                       # timed: shuffle + batch prep + train steps
        for x, y in epoch_batches(rng, aug, ytr_t, n, steps):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            total += loss.detach()
        secs = time.perf_counter() - t0                # end of the timed part
        epoch_seconds.append(secs)
        last_loss = float(total) / steps
        sched.step()
        if not a.json:
            acc = evaluate(model, xte, yte)
            print("epoch %d/%d  lr %.5f  loss %.4f  test accuracy %.4f  %.1f s  %.0f images/s"
                  % (epoch + 1, a.epochs, lr, last_loss, acc, secs, steps * BATCH / secs), flush=True)

    acc = evaluate(model, xte, yte)
    ips = a.epochs * steps * BATCH / sum(epoch_seconds)
    if a.json:
        print(json.dumps({
            "framework": "pytorch", "version": torch.__version__, "threads": a.threads,
            "epochs": a.epochs, "params": params, "train_images": n, "batch": BATCH,
            "train_images_per_s": round(ips, 2), "accuracy": acc, "loss": round(last_loss, 6),
            "epoch_seconds": [round(s, 3) for s in epoch_seconds],
        }))
    else:
        print("test accuracy %.4f, %.0f training images/s over %d epochs (%.1f s)"
              % (acc, ips, a.epochs, sum(epoch_seconds)))


if __name__ == "__main__":
    main()
