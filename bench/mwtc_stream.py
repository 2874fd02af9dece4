"""bench/mwtc_stream.py: mwtc's random stream in Python, so that a PyTorch run can start from the
weights `mwtc train --seed S` starts from and see the batches it sees, image for image.

mwtc draws everything from one xoshiro256** generator seeded through splitmix64 (runtime/rt_rng.c),
in this order (compiler/run_train.c): the initial weights (compiler/run_model.c run_model_init),
then per epoch a Fisher-Yates shuffle of 0..n-1 (runtime/rt_data_batch.c rt_data_shuffle), then per
batch the augmentation draws of each image (crop top, crop left, flip; rt_data_batch) and one 64-bit
dropout seed. This module replays that order; mwt_reference.py --stream mwtc uses it. Pure Python
integers: the shuffle costs about 0.2 s per epoch of 60000 images.

Parameters are named as mwtc names them (conv1.w, bn1.gamma, mask1.w1, linear1.b, ...), in mwtc's
order: per conv its weight and bias, its batchnorm's gamma and beta, then its mask generator's w1,
w2 and b2; then the linear layers. `named_params` builds that list from a PyTorch model whose
modules are registered in forward order (bench/torch_train.py and mwt_reference.py's models)."""
import math

import numpy as np
import torch
import torch.nn as nn

from torch_train import MEAN, PAD, STD, Augmenter

M64 = (1 << 64) - 1


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


class MwtcRng:
    """runtime/rt_rng.c: xoshiro256**, seeded with four splitmix64 outputs."""

    def __init__(self, seed):
        x = seed & M64
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            self.s.append(z ^ (z >> 31))

    def next_u64(self):
        s = self.s
        r = (_rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return r

    def uniform(self):
        """rt_rng_uniform: the top 24 bits over 2^24, exactly a float32."""
        return (self.next_u64() >> 40) * 2.0 ** -24

    def below(self, n):
        """rt_rng_below: uniform in [0, n), rejecting the lowest 2^64 mod n values."""
        threshold = ((1 << 64) - n) % n
        while True:
            x = self.next_u64()
            if x >= threshold:
                return x % n

    def normal(self):
        """rt_rng_normal: Box-Muller in doubles, one value per two draws."""
        u1 = ((self.next_u64() >> 11) + 1.0) * 2.0 ** -53
        u2 = (self.next_u64() >> 11) * 2.0 ** -53
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586 * u2)


def named_params(model):
    """[(mwtc name, parameter)] in mwtc's order, for a SimCNN-like model (convs with batchnorm,
    mask generators (a module class named MaskGenerator, with fc1 = w1 and fc2 = w2, b2), linear
    layers), its modules registered in forward order."""
    out, conv, bn, lin, mask = [], 0, 0, 0, 0
    gen_linears = set()
    for mod in model.modules():
        if type(mod).__name__ == "MaskGenerator":   # mwt_reference.py's: fc1 (w1), fc2 (w2, b2)
            mask += 1
            out += [("mask%d.w1" % mask, mod.fc1.weight), ("mask%d.w2" % mask, mod.fc2.weight),
                    ("mask%d.b2" % mask, mod.fc2.bias)]
            gen_linears |= {id(mod.fc1), id(mod.fc2)}
        elif isinstance(mod, nn.Conv2d):
            conv += 1
            out.append(("conv%d.w" % conv, mod.weight))
            if mod.bias is not None:
                out.append(("conv%d.b" % conv, mod.bias))
        elif isinstance(mod, nn.BatchNorm2d):
            bn += 1
            out += [("bn%d.gamma" % bn, mod.weight), ("bn%d.beta" % bn, mod.bias)]
        elif isinstance(mod, nn.Linear) and id(mod) not in gen_linears:
            lin += 1
            out.append(("linear%d.w" % lin, mod.weight))
            if mod.bias is not None:
                out.append(("linear%d.b" % lin, mod.bias))
    return out


def init_params(model, rng, mask_init="linear"):
    """compiler/run_model.c run_model_init: gammas and b2 1, betas 0, mask generators' weights
    kaiming_normal when asked, every other tensor uniform in +-1/sqrt(fan_in), the fan-in of the
    last weight (a bias uses its weight's)."""
    params = named_params(model)
    fan_in = 1
    with torch.no_grad():
        for name, p in params:
            n = p.numel()
            if name.endswith(".gamma") or name.endswith(".b2"):
                p.fill_(1.0)
                continue
            if name.endswith(".beta"):
                p.zero_()
                continue
            if p.dim() >= 2:
                fan_in = n // p.shape[0]
            if mask_init == "kaiming_normal" and (name.endswith(".w1") or name.endswith(".w2")):
                std = np.float32(math.sqrt(2.0 / fan_in))
                v = np.array([np.float32(rng.normal()) for _ in range(n)], dtype=np.float32) * std
            else:
                bound = np.float32(1.0) / np.float32(math.sqrt(fan_in))
                u = np.array([rng.next_u64() >> 40 for _ in range(n)], dtype=np.float64) * 2.0 ** -24
                v = (np.float32(2.0) * u.astype(np.float32) - np.float32(1.0)) * bound
            p.copy_(torch.from_numpy(v.astype(np.float32).reshape(p.shape)))
    return params


class Batches:
    """rt_data_shuffle + rt_data_batch for examples/fashion.mwt's data (random_crop(pad = 2), hflip):
    per epoch a shuffle, per batch the images' crop and flip draws, then the dropout seed. The
    windows are cut by torch_train.Augmenter; the pixels normalized as mwtc computes them,
    (v / 255 - mean) / std in float32 (torch_train.normalize multiplies by 1/255 instead)."""

    def __init__(self, images, labels, rng):
        self.y, self.rng = torch.from_numpy(labels), rng
        self.aug = Augmenter(images, None)
        self.mean, self.std = np.float32(MEAN), np.float32(STD)

    def epoch(self, n, steps, batch):
        idx = list(range(n))
        for i in range(n, 1, -1):
            j = self.rng.below(i)
            idx[i - 1], idx[j] = idx[j], idx[i - 1]
        idx = np.array(idx, dtype=np.int64)
        for s in range(steps):
            bi = idx[s * batch:(s + 1) * batch]
            top = np.zeros(batch, dtype=np.int64)
            left = np.zeros(batch, dtype=np.int64)
            flip = np.zeros(batch, dtype=bool)
            for i in range(batch):
                top[i] = self.rng.below(2 * PAD + 1)
                left[i] = self.rng.below(2 * PAD + 1)
                flip[i] = self.rng.uniform() < 0.5
            self.rng.next_u64()                      # the step's dropout seed
            u8 = self.aug.crops(bi, top, left, flip)
            x = (u8.astype(np.float32) / np.float32(255.0) - self.mean) / self.std
            yield torch.from_numpy(x).unsqueeze(1), self.y[torch.from_numpy(bi)]


def read_ckpt(path):
    """An mwtc checkpoint's float tensors (runtime/rt_ckpt.h): {name: numpy array}."""
    import struct
    with open(path, "rb") as f:
        b = f.read()
    if b[:8] != b"MWTCKPT\0":
        raise ValueError("%s: not an mwtc checkpoint" % path)
    _, n = struct.unpack_from("<II", b, 8)
    o, out = 16, {}
    for _ in range(n):
        (ln,) = struct.unpack_from("<I", b, o)
        o += 4
        name = b[o:o + ln].decode()
        o += ln
        kind, rank = struct.unpack_from("<II", b, o)
        o += 8
        dims = struct.unpack_from("<%dq" % rank, b, o)
        o += 8 * rank
        (nb,) = struct.unpack_from("<Q", b, o)
        o += 8
        if kind == 1:
            out[name] = np.frombuffer(b[o:o + nb], dtype="<f4").reshape(dims).copy()
        o += nb
    return out
