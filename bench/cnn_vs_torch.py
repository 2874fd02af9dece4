#!/usr/bin/python3
"""bench/cnn_vs_torch.py: training throughput of the paper's CIFAR-10 networks, VGG16 (with
batchnorm) and ResNet18, in mwtc and in PyTorch, one after the other on the same machine, as a ratio.

    bench/cnn_vs_torch.py [--model vgg16|resnet18|cnn5x5|cnn5x5s2] [--torch PYTHON] [--images N] [--threads T]
                          [--standard] [--batch B] [--infer]

--model cnn5x5 is not the paper's: four 5x5 convs (64, 64, 128, 128 channels, pad 2, batchnorm and
relu, the last three masked and each followed by a 2x2 max pooling) and a 2048-256-10 head, written
here in the script: a network of the kind a user writes beside the papers', whose convs run by Winograd
F(2x2,5x5) (MWTC_WINOGRAD=off: the direct kernels). --model cnn5x5s2 is the same with the masked convs
at stride 2 instead of the max poolings (an all-convolutional network's downsampling), which mwtc
runs over their input's phases (pass_phase.c; MWTC_PHASE=off: the direct kernels).

The models are the stdlib's models/vgg16.mwt (13 convs 3x3 with bias, batchnorm and relu, every
conv but the first masked (MwT), five max poolings, a 512-512-10 head with dropout 0.5) and
models/resnet18.mwt (a 3x3 stem, four stages of two BasicBlocks, convs without bias, both 3x3 convs
of every block and each 1x1 projection masked after its batchnorm, gap, one linear layer); with
--standard the same networks without masks (vgg16_standard, resnet18_standard). MwT trains with
cross_entropy + 0.5 * cohesion + 1.5 * coupling; the mask generators are bench/mwt_reference.py's
(relu(tanh(fc2(relu(fc1(gap(x)))))), reading the conv's input), and so are the losses.
SGD(lr 0.05, momentum 0.9, nesterov), batch B (default 128).

The data are CIFAR-shaped (3 x 32 x 32) and synthetic, as no CIFAR-10 is on the machine: mwtc makes
its `synthetic` set in memory; PyTorch trains on a fixed random batch per step. Only speed is
compared here, never accuracy.

What is timed: mwtc's `train --json` images_per_s (its steps, batch preparation included, the
compile not); PyTorch's steps (forward, losses, backward, optimizer step) after one warm-up step,
its batches made beforehand (not timed: favourable to PyTorch). Both on T threads (default 2).

--infer times inference instead (the model in eval mode: batchnorm's running statistics, masks
computed, no dropout): mwtc's build/bench/bench_infer on N test images (its bB_images_per_s: batch B,
default 256 here, the best of three passes over them; b1_latency_ms: the median over 200 images
one at a time); PyTorch's forward passes under no_grad over the same number of images at batch B,
the best of three after a warm-up pass, and the median of 200 single-image passes after 20.

The PyTorch side runs in the interpreter given by --torch (default /usr/bin/python3, Debian's
python3-torch 1.13; a venv's python with PyPI's torch is the other peer): this script calls itself
with --peer under it. MWTC=path picks the mwtc binary (default build/mwtc).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CFG = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M']


def peer(args):
    """The PyTorch side: prints one JSON object."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    class Gen(nn.Module):
        def __init__(self, cin, cout, hidden=None):
            super().__init__()
            hidden = hidden or cout
            self.fc1, self.fc2 = nn.Linear(cin, hidden), nn.Linear(hidden, cout)
            nn.init.constant_(self.fc2.bias, 1.0)

        def forward(self, x):
            return torch.relu(torch.tanh(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3)))))))

    class Block(nn.Module):
        def __init__(self, cin, cout, masked, k=3, hidden=None, stride=1):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(cin, cout, k, stride, padding=k // 2), nn.BatchNorm2d(cout)
            self.gen = Gen(cin, cout, hidden) if masked else None
            self.mask = None

        def forward(self, x):
            y = self.bn(self.conv(x))
            if self.gen is not None:
                self.mask = self.gen(x)
                y = y * self.mask[:, :, None, None]
            return torch.relu(y)

    class Basic(nn.Module):   # torchvision's BasicBlock, each conv's batchnorm masked
        def __init__(self, cin, cout, stride, masked):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
            self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
            self.g1 = Gen(cin, cout) if masked else None
            self.g2 = Gen(cout, cout) if masked else None
            self.proj = stride != 1 or cin != cout
            if self.proj:
                self.cs, self.bs = nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                self.gs = Gen(cin, cout) if masked else None
            self.masks = []

        def forward(self, x):
            self.masks = []

            def mask(g, y, inp):
                if g is None:
                    return y
                m = g(inp)
                self.masks.append(m)
                return y * m[:, :, None, None]
            y = torch.relu(mask(self.g1, self.b1(self.c1(x)), x))
            y2 = mask(self.g2, self.b2(self.c2(y)), y)
            sc = mask(self.gs, self.bs(self.cs(x)), x) if self.proj else x
            return torch.relu(y2 + sc)

    class ResNet(nn.Module):
        def __init__(self, masked):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
            blocks, cin = [], 64
            for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                blocks += [Basic(cin, cout, stride, masked), Basic(cout, cout, 1, masked)]
                cin = cout
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(512, 10)

        def forward(self, x):
            return self.fc(self.blocks(self.stem(x)).mean(dim=(2, 3)))

        def all_masks(self):
            return [m for b in self.blocks for m in b.masks]

    class VGG(nn.Module):
        def __init__(self, masked):
            super().__init__()
            layers, cin, first = [], 3, True
            self.blocks = []
            for v in CFG:
                if v == 'M':
                    layers.append(nn.MaxPool2d(2))
                    continue
                b = Block(cin, v, masked and not first)
                layers.append(b)
                self.blocks.append(b)
                cin, first = v, False
            self.features = nn.Sequential(*layers)
            self.head = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, 512),
                                      nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, 10))

        def forward(self, x):
            return self.head(torch.flatten(self.features(x), 1))

        def all_masks(self):
            return [b.mask for b in self.blocks if b.gen is not None]

    class Cnn5(nn.Module):   # CNN5X5 below, as mwtc reads it (a generator's hidden layer as LANGUAGE.md's table)
        def __init__(self, masked, strided=False):
            super().__init__()
            self.blocks = [Block(3, 64, False, 5)] + [Block(cin, cout, masked, 5, cout if cout < 128 else cout // 2,
                                                            2 if strided else 1)
                                                      for cin, cout in ((64, 64), (64, 128), (128, 128))]
            layers = [self.blocks[0]]
            for b in self.blocks[1:]:
                layers += [b] if strided else [b, nn.MaxPool2d(2)]
            self.features = nn.Sequential(*layers)
            self.head = nn.Sequential(nn.Linear(2048, 256), nn.ReLU(), nn.Linear(256, 10))

        def forward(self, x):
            return self.head(torch.flatten(self.features(x), 1))

        def all_masks(self):
            return [b.mask for b in self.blocks if b.gen is not None]

    def mask_losses(masks, y):   # bench/mwt_reference.py's
        same = (y[:, None] == y[None, :]).float()
        upper = torch.triu(torch.ones_like(same), diagonal=1)
        w_same, w_diff = same * upper, (1.0 - same) * upper
        coh, cpl = 0.0, 0.0
        for m in masks:
            mn = F.normalize(m, p=2, dim=1)
            s = mn @ mn.t()
            coh = coh + (1.0 - (s * w_same).sum() / w_same.sum())
            cpl = cpl + (s * w_diff).sum() / w_diff.sum()
        return coh / len(masks), cpl / len(masks)

    masked = not args.standard
    model = {"vgg16": VGG, "resnet18": ResNet, "cnn5x5": Cnn5, "cnn5x5s2": lambda m: Cnn5(m, True)}[args.model](masked)
    if args.infer:
        model.eval()
        steps = max(1, args.images // args.batch)
        x = torch.randn(args.batch, 3, 32, 32)
        with torch.no_grad():
            model(x)   # warm-up
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                for _ in range(steps):
                    model(x)
                best = min(best, time.perf_counter() - t0)
            one, lat = x[:1].contiguous(), []
            for i in range(220):
                t0 = time.perf_counter()
                model(one)
                if i >= 20:
                    lat.append(time.perf_counter() - t0)
        lat.sort()
        print(json.dumps({"torch": torch.__version__, "images_per_s": steps * args.batch / best,
                          "steps": steps, "seconds": best, "b1_latency_ms": lat[len(lat) // 2] * 1e3}))
        return
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    steps = max(2, args.images // args.batch)
    xs = [torch.randn(args.batch, 3, 32, 32) for _ in range(min(steps, 8))]
    ys = [torch.randint(0, 10, (args.batch,)) for _ in range(min(steps, 8))]

    def step(i):
        x, y = xs[i % len(xs)], ys[i % len(ys)]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        if masked:
            coh, cpl = mask_losses(model.all_masks(), y)
            loss = loss + 0.5 * coh + 1.5 * cpl
        loss.backward()
        opt.step()

    step(0)   # warm-up: allocations, oneDNN's first-call work
    t0 = time.perf_counter()
    for i in range(1, steps):
        step(i)
    dt = time.perf_counter() - t0
    print(json.dumps({"torch": torch.__version__, "images_per_s": (steps - 1) * args.batch / dt,
                      "steps": steps - 1, "seconds": dt}))


CNN5X5 = """model cnn5x5 : [3, 32, 32] -> [10] {
    conv(64, k = 5) batchnorm relu
    %(open)s
        conv(64, k = 5) batchnorm relu maxpool(2)
        conv(128, k = 5) batchnorm relu maxpool(2)
        conv(128, k = 5) batchnorm relu maxpool(2)
    %(close)s
    flatten
    linear(256) relu
    linear(10)
}
"""


CNN5X5S2 = """model cnn5x5s2 : [3, 32, 32] -> [10] {
    conv(64, k = 5) batchnorm relu
    %(open)s
        conv(64, k = 5, stride = 2) batchnorm relu
        conv(128, k = 5, stride = 2) batchnorm relu
        conv(128, k = 5, stride = 2) batchnorm relu
    %(close)s
    flatten
    linear(256) relu
    linear(10)
}
"""


def mwtc_side(args):
    mwtc = os.environ.get("MWTC") or os.path.join(ROOT, "build", "mwtc")
    if args.model in ("cnn5x5", "cnn5x5s2"):   # the standard model: the same layers, no modular { }
        model = args.model
        header = (CNN5X5 if model == "cnn5x5" else CNN5X5S2) % (
            {"open": "", "close": ""} if args.standard else {"open": "modular {", "close": "}"})
    else:
        model, header = args.model + ("_standard" if args.standard else ""), 'import "models/%s"\n' % args.model
    loss = "cross_entropy" if args.standard else "cross_entropy + 0.5 * cohesion + 1.5 * coupling"
    src = (header +
           'dataset toy = synthetic(n = %d, test = %d, seed = 1) { classes = 10  shape = [3, 32, 32] }\n'
           'train %s on toy { epochs = 1  batch = %d  optimizer = sgd(lr = 0.05, momentum = 0.9, nesterov = true)\n'
           '    loss = %s }\n' % (args.images, args.images if args.infer else 256, model, args.batch, loss))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "bench.mwt")
        with open(path, "w") as f:
            f.write(src)
        if args.infer:
            infer = os.environ.get("BENCH_INFER") or os.path.join(ROOT, "build", "bench", "bench_infer")
            cmd = [infer, path, "--threads", str(args.threads), "--images", str(args.images), "--latency", "200",
                   "--batch", str(args.batch)]
        else:
            cmd = [mwtc, "train", path, "--threads", str(args.threads), "--json", "--quiet", "-o",
                   os.path.join(d, "bench.ckpt")]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("cnn_vs_torch: mwtc failed:\n" + r.stderr)
        out = json.loads(r.stdout)
        if args.infer:
            out["images_per_s"] = out["b%d_images_per_s" % args.batch]
        return out


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=["vgg16", "resnet18", "cnn5x5", "cnn5x5s2"], default="vgg16")
    p.add_argument("--torch", default="/usr/bin/python3", help="the interpreter for the PyTorch side")
    p.add_argument("--images", type=int, default=1280, help="training images (steps = images / batch)")
    p.add_argument("--batch", type=int, default=None, help="default 128 (training), 256 (--infer)")
    p.add_argument("--infer", action="store_true", help="time inference (eval mode) instead of training")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--standard", action="store_true", help="the model without masks, cross-entropy only")
    p.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.batch is None:
        args.batch = 256 if args.infer else 128
    if args.images < 2 * args.batch or args.batch < 2 or args.threads < 1:
        p.error("--images must be at least two batches, --batch at least 2, --threads at least 1")
    if args.peer:
        peer(args)
        return
    m = mwtc_side(args)
    cmd = [args.torch, os.path.abspath(__file__), "--peer", "--model", args.model, "--images", str(args.images), "--batch",
           str(args.batch), "--threads", str(args.threads)] + (["--standard"] if args.standard else []) + \
        (["--infer"] if args.infer else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("cnn_vs_torch: the PyTorch side failed:\n" + r.stderr)
    t = json.loads(r.stdout.strip().splitlines()[-1])
    what = {"vgg16": "VGG16", "resnet18": "ResNet18", "cnn5x5": "cnn5x5", "cnn5x5s2": "cnn5x5s2"}[args.model] + \
        (" standard" if args.standard else " MwT")
    print("%s, batch %d, %d threads, %s" % (what, args.batch, args.threads, cpu_name()))
    print("  %-28s %10s %14s %10s" % ("", "mwtc", "PyTorch " + t["torch"], "ratio"))
    print("  %-28s %10.1f %14.1f %9.2fx" % ("inference images/s" if args.infer else "training images/s",
                                            m["images_per_s"], t["images_per_s"], m["images_per_s"] / t["images_per_s"]))
    if args.infer:   # a ratio above 1 is mwtc faster here too
        print("  %-28s %10.2f %14.2f %9.2fx" % ("latency ms, batch 1", m["b1_latency_ms"], t["b1_latency_ms"],
                                                t["b1_latency_ms"] / m["b1_latency_ms"]))


if __name__ == "__main__":
    main()
