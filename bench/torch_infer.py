#!/usr/bin/python3
"""bench/torch_infer.py: the PyTorch peer of build/bench/bench_infer: inference of the standard
SimCNN of bench/torch_train.py (random weights: the speed does not depend on them) on the
Fashion-MNIST test images, normalized once beforehand.

    /usr/bin/python3 bench/torch_infer.py [--threads N] [--images N] [--latency N]
        [--channels C1,C2,C3,C4,C5] [--data DIR] [--json]

b256_images_per_s: batches of 256 through model(x) under torch.inference_mode, eval mode, after one
warm-up batch; the best of three passes over the images (PyTorch's own figure varies by a third from
run to run on this machine). b1_latency_ms: the median time of one image through the model, over --latency images
after 20 warm-up runs. --channels: the same figures for a SimCNN with these conv widths (a module
that mwtc cut out, generators dropped: a plain smaller CNN; bench_infer prints its widths).
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import conv_bn, load, normalize  # noqa: E402


def simcnn(ch, classes=10):
    c1, c2, c3, c4, c5 = ch
    return nn.Sequential(
        *conv_bn(1, c1), nn.ReLU(),
        *conv_bn(c1, c2), nn.ReLU(), nn.MaxPool2d(2),
        *conv_bn(c2, c3), nn.ReLU(),
        *conv_bn(c3, c4), nn.ReLU(), nn.MaxPool2d(2),
        *conv_bn(c4, c5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c5 * 3 * 3, 256), nn.ReLU(),
        nn.Linear(256, classes),
    )


def figures(model, x, nlat):
    model.eval()
    with torch.inference_mode():
        model(x[:256])
        b256 = 0.0
        for rep in range(3):   # the best of three passes, as bench_infer does
            t0 = time.perf_counter()
            for at in range(0, len(x), 256):
                model(x[at:at + 256])
            b256 = max(b256, len(x) / (time.perf_counter() - t0))
        for i in range(20):
            model(x[i:i + 1])
        t = []
        for i in range(nlat):
            t0 = time.perf_counter()
            model(x[i:i + 1])
            t.append(time.perf_counter() - t0)
    t.sort()
    return b256, t[len(t) // 2] * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--latency", type=int, default=1000)
    ap.add_argument("--channels", default="")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    _, _, xte, _ = load(a.data)
    x = torch.from_numpy(normalize(xte[:a.images])).unsqueeze(1).contiguous()
    nlat = min(a.latency, len(x))
    out = {"torch": torch.__version__, "threads": a.threads, "images": len(x)}
    out["b256_images_per_s"], out["b1_latency_ms"] = figures(simcnn((32, 32, 64, 64, 128)), x, nlat)
    if a.channels:
        ch = tuple(int(v) for v in a.channels.split(","))
        out["module_channels"] = list(ch)
        out["module_b256_images_per_s"], out["module_b1_latency_ms"] = figures(simcnn(ch), x, nlat)
    if a.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")


if __name__ == "__main__":
    main()
