#!/usr/bin/python3
"""bench/layers_vs_torch.py: training throughput of one conv layer at a time, of any shape, in mwtc and
in PyTorch, one after the other on the same machine, as a ratio: where a user's architecture would
find a kernel slower than PyTorch's.

    bench/layers_vs_torch.py [--torch PYTHON] [--images N] [--threads T] [--batch B] [SHAPE ...]

A SHAPE is C:H:K:k:stride:pad (C input channels of H x H, K output channels, a k x k kernel); the
default list is the shapes user networks are made of beyond the papers' 3x3 convs (strided convs,
7x7 stems, valid padding, 1x1 bottlenecks, 5x5). Each is trained as the network

    conv(C, k = 1, bias = false)                              (so that the layer's data gradient runs)
    conv(K, k = k, stride = stride, pad = pad, bias = false) batchnorm relu
    gap linear(10)

on synthetic C x H x H images, standard training (cross-entropy, SGD with momentum 0.9, nesterov, lr
0.05), batch B (default 128), T threads (default 2). What is timed: mwtc's `train --json`
images_per_s (its steps, batch preparation included, the compile not); PyTorch's steps after one
warm-up step, its batches made beforehand (not timed: favourable to PyTorch). The 1x1 conv before
the layer is in both. Only speed is compared, never accuracy.

The PyTorch side runs in the interpreter given by --torch (default /usr/bin/python3, Debian's
python3-torch 1.13; a venv's python with PyPI's torch is the other peer): this script calls itself
with --peer under it. MWTC=path picks the mwtc binary (default build/mwtc).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from cnn_vs_torch import cpu_name  # noqa: E402 (this directory, which Python puts first on the path)

DEFAULT = [
    "64:32:64:3:1:1",     # the papers' 3x3 (Winograd in mwtc): the reference line
    "64:32:128:3:2:1",    # ResNet's stride-2 3x3
    "3:32:64:7:2:3",      # a 7x7 stride-2 stem
    "64:32:64:3:1:0",     # valid padding
    "256:16:64:1:1:0",    # a bottleneck's 1x1
    "64:32:128:5:2:2",    # a stride-2 5x5
    "32:28:32:5:1:0",     # LeNet's valid 5x5
]


def parse_shape(s):
    try:
        c, h, k, r, st, pad = (int(v) for v in s.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError("a shape is C:H:K:k:stride:pad, not %r" % s)
    if min(c, h, k, r, st) < 1 or pad < 0 or (h + 2 * pad - r) // st + 1 < 1 or h + 2 * pad < r:
        raise argparse.ArgumentTypeError("shape %r gives no output" % s)
    return c, h, k, r, st, pad


def peer(args):
    """The PyTorch side: prints one JSON object per shape."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = []
    for c, h, k, r, st, pad in args.shape:
        model = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.Conv2d(c, k, r, st, pad, bias=False),
                              nn.BatchNorm2d(k), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(k, 10))
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        steps = max(2, args.images // args.batch)
        xs = [torch.randn(args.batch, c, h, h) for _ in range(min(steps, 4))]
        ys = [torch.randint(0, 10, (args.batch,)) for _ in range(min(steps, 4))]

        def step(i):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xs[i % len(xs)]), ys[i % len(ys)]).backward()
            opt.step()

        step(0)
        t0 = time.perf_counter()
        for i in range(1, steps):
            step(i)
        dt = time.perf_counter() - t0
        out.append((steps - 1) * args.batch / dt)
    print(json.dumps({"torch": torch.__version__, "images_per_s": out}))


def mwtc_one(args, shape):
    c, h, k, r, st, pad = shape
    mwtc = os.environ.get("MWTC") or os.path.join(ROOT, "build", "mwtc")
    src = ("model layer : [%d, %d, %d] -> [10] {\n"
           "    conv(%d, k = 1, bias = false)\n"
           "    conv(%d, k = %d, stride = %d, pad = %d, bias = false) batchnorm relu\n"
           "    gap linear(10)\n}\n"
           "dataset toy = synthetic(n = %d, test = 128, seed = 1) { classes = 10  shape = [%d, %d, %d] }\n"
           "train layer on toy { epochs = 1  batch = %d  optimizer = sgd(lr = 0.05, momentum = 0.9, nesterov = true)\n"
           "    loss = cross_entropy }\n" % (c, h, h, c, k, r, st, pad, args.images, c, h, h, args.batch))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "layer.mwt")
        with open(path, "w") as f:
            f.write(src)
        r = subprocess.run([mwtc, "train", path, "--threads", str(args.threads), "--json", "--quiet", "-o",
                            os.path.join(d, "layer.ckpt")], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("layers_vs_torch: mwtc failed on %s:\n%s" % (":".join(map(str, shape)), r.stderr))
        return json.loads(r.stdout)["images_per_s"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("shape", nargs="*", type=parse_shape, help="C:H:K:k:stride:pad (default: a list of seven)")
    p.add_argument("--torch", default="/usr/bin/python3", help="the interpreter for the PyTorch side")
    p.add_argument("--images", type=int, default=1280, help="training images a shape (steps = images / batch)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if not args.shape:
        args.shape = [parse_shape(s) for s in DEFAULT]
    if args.images < 2 * args.batch or args.batch < 2 or args.threads < 1:
        p.error("--images must be at least two batches, --batch at least 2, --threads at least 1")
    if args.peer:
        peer(args)
        return
    mine = [mwtc_one(args, s) for s in args.shape]
    cmd = [args.torch, os.path.abspath(__file__), "--peer", "--images", str(args.images), "--batch", str(args.batch),
           "--threads", str(args.threads)] + [":".join(map(str, s)) for s in args.shape]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("layers_vs_torch: the PyTorch side failed:\n" + r.stderr)
    t = json.loads(r.stdout.strip().splitlines()[-1])
    print("one conv layer a network (C:H:K:k:stride:pad), training images/s, batch %d, %d threads, %s"
          % (args.batch, args.threads, cpu_name()))
    print("  %-20s %10s %14s %10s" % ("shape", "mwtc", "PyTorch " + t["torch"], "ratio"))
    for s, m, o in zip(args.shape, mine, t["images_per_s"]):
        print("  %-20s %10.1f %14.1f %9.2fx" % (":".join(map(str, s)), m, o, m / o))


if __name__ == "__main__":
    main()
