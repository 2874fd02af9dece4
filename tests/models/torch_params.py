#!/usr/bin/python3
# Trainable-parameter counts of the stdlib models, computed by plain PyTorch (Debian's torch 1.13,
# no other packages).  Output: one line per model, `NAME PARAMS`; saved as expected_params.txt.
#
# Architectures follow the MwT reference implementation (github.com/qibinhang/MwT, commit 3d29e7e),
# re-written here (the reference code is not imported):
#   mask generator, masked conv:  src/models/utils_v2.py  (MaskGenerator, MaskConvBN;
#                                 identical to src/models_cnnsplitter/utils_v2.py)
#   simcnn / simcnn_standard:     src/models_cnnsplitter/simcnn_masked.py, simcnn.py
#   rescnn / rescnn_standard:     src/models_cnnsplitter/rescnn_masked.py, rescnn.py
#   vgg16 / vgg16_standard:       src/models/vgg_masked.py, vgg.py   (cifar10_vgg16_bn, cfg 'D')
#   resnet18 / resnet18_standard: src/models/resnet_masked.py, resnet.py  (ResNet18, BasicBlock)
# simcnn_fm / simcnn_fm_standard: the Fashion-MNIST SimCNN of /work/shared/LANGUAGE.md section 1,
# with the mask rule of DESIGN.md (the same MaskGenerator as above).
#
# Facts that the counts depend on:
# - Masked conv (MaskConvBN): conv -> BatchNorm2d -> * mask(x), x = the conv's input; the relu follows.
#   mask(x) = relu(tanh(Linear(H -> C_out, bias)(relu(Linear(C_in -> H, no bias)(gap(x)))))),
#   H = C_out if C_out < 128 else C_out // 2.
# - The first conv (3 input channels) is never masked.
# - SimCNN and ResCNN (CNNSplitter's models): the standard versions have NO batchnorm at all; the
#   modular versions put a batchnorm on every masked conv (inside MaskConvBN) but none on conv_0.
# - ResNet18 modular: both 3x3 convs of every BasicBlock and the 1x1 downsample conv are masked
#   (downsample = MaskConvBN(1x1, stride, bias=False), i.e. conv -> BN -> mask); the stem is not.
import torch
import torch.nn as nn


class MaskGen(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        h = cout if cout < 128 else cout // 2
        self.fc1 = nn.Linear(cin, h, bias=False)
        self.fc2 = nn.Linear(h, cout)

    def forward(self, x):
        g = x.mean(dim=(2, 3))
        return torch.relu(torch.tanh(self.fc2(torch.relu(self.fc1(g)))))


class MaskConvBN(nn.Module):
    def __init__(self, cin, cout, k=3, stride=1, bias=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=bias)
        self.bn = nn.BatchNorm2d(cout)
        self.gen = MaskGen(cin, cout)

    def forward(self, x):
        return self.bn(self.conv(x)) * self.gen(x)[:, :, None, None]


class Residual(nn.Module):
    """out = body(x) + shortcut(x), then `post` (relu or nothing)."""

    def __init__(self, body, shortcut=None, post=None):
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self.post = post if post is not None else nn.Identity()

    def forward(self, x):
        return self.post(self.body(x) + self.shortcut(x))


def conv(cin, cout, k=3, stride=1, bias=True, bn=False, masked=False):
    """A conv with optional batchnorm; masked means MaskConvBN (which always has the batchnorm)."""
    if masked:
        return [MaskConvBN(cin, cout, k, stride, bias)]
    layers = [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=bias)]
    return layers + [nn.BatchNorm2d(cout)] if bn else layers


def pool():
    return nn.MaxPool2d(2, 2)


# SimCNN (CNNSplitter's, VGG16-like): 13 convs 3x3 pad 1 with bias, relu, maxpool 2 after convs
# 1, 3, 6, 9, 12; head flatten, dropout, fc 512, relu, dropout, fc 512, relu, fc classes.
def simcnn(modular, classes=10):
    chans = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    layers, cin = [], 3
    for i, c in enumerate(chans):
        m = modular and i > 0
        layers += conv(cin, c, masked=m) + [nn.ReLU()]
        if i in (1, 3, 6, 9, 12):
            layers.append(pool())
        cin = c
    layers += [nn.Flatten(), nn.Dropout(), nn.Linear(512, 512), nn.ReLU(),
               nn.Dropout(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, classes)]
    return nn.Sequential(*layers)


# ResCNN (CNNSplitter's): 12 convs 3x3 pad 1 with bias, each followed by relu; residual adds
# (no relu after the add) around convs 2-3, 6-7, 10-11; head flatten, dropout 0.5, fc classes.
def rescnn(modular, classes=10):
    def cr(cin, cout, first=False):
        return conv(cin, cout, masked=modular and not first) + [nn.ReLU()]

    def res(c):
        return Residual(nn.Sequential(*(cr(c, c) + cr(c, c))))

    layers = (cr(3, 64, first=True) + cr(64, 128) + [pool(), res(128)]
              + cr(128, 256) + [pool()] + cr(256, 512) + [pool(), res(512)]
              + cr(512, 512) + [pool()] + cr(512, 512) + [pool(), res(512)]
              + [nn.Flatten(), nn.Dropout(0.5), nn.Linear(512, classes)])
    return nn.Sequential(*layers)


# VGG16-BN for CIFAR (chenyaofo/pytorch-cifar-models): cfg D, conv 3x3 pad 1 with bias, BN, relu;
# head fc 512, relu, dropout, fc 512, relu, dropout, fc classes.  Modular: all but the first conv
# are MaskConvBN.
def vgg16(modular, classes=10):
    cfg = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M']
    layers, cin = [], 3
    for v in cfg:
        if v == 'M':
            layers.append(pool())
            continue
        layers += conv(cin, v, bn=True, masked=modular and cin != 3) + [nn.ReLU()]
        cin = v
    layers += [nn.Flatten(), nn.Linear(512, 512), nn.ReLU(), nn.Dropout(),
               nn.Linear(512, 512), nn.ReLU(), nn.Dropout(), nn.Linear(512, classes)]
    return nn.Sequential(*layers)


# ResNet18 for CIFAR: stem conv 3x3 stride 1 pad 1 no bias, BN, relu (no maxpool); BasicBlock x2 at
# 64, 128/2, 256/2, 512/2; convs have no bias; downsample conv1x1(stride) + BN when the shape
# changes; relu after the add; global average pool; fc 512 -> classes.
def resnet18(modular, classes=10):
    def basic(cin, cout, stride):
        body = nn.Sequential(*(conv(cin, cout, 3, stride, False, True, modular) + [nn.ReLU()]
                               + conv(cout, cout, 3, 1, False, True, modular)))
        sc = None
        if stride != 1 or cin != cout:
            sc = nn.Sequential(*conv(cin, cout, 1, stride, False, True, modular))
        return Residual(body, sc, nn.ReLU())

    layers = conv(3, 64, 3, 1, False, True) + [nn.ReLU()]
    cin = 64
    for c, s in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [basic(cin, c, s), basic(c, c, 1)]
        cin = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes)]
    return nn.Sequential(*layers)


# SimCNN-FM (LANGUAGE.md section 1): conv_bn(32) relu, then (masked in the modular version)
# conv_bn(32) relu pool, conv_bn(64) relu, conv_bn(64) relu pool, conv_bn(128) relu pool;
# flatten (128*3*3), linear 256, relu, linear classes.  All convs have bias.
def simcnn_fm(modular, classes=10):
    layers = conv(1, 32, bn=True) + [nn.ReLU()]
    cin = 32
    for c, p in ((32, True), (64, False), (64, True), (128, True)):
        layers += conv(cin, c, bn=True, masked=modular) + [nn.ReLU()] + ([pool()] if p else [])
        cin = c
    layers += [nn.Flatten(), nn.Linear(128 * 3 * 3, 256), nn.ReLU(), nn.Linear(256, classes)]
    return nn.Sequential(*layers)


MODELS = [("simcnn", simcnn, [3, 32, 32]), ("rescnn", rescnn, [3, 32, 32]),
          ("vgg16", vgg16, [3, 32, 32]), ("resnet18", resnet18, [3, 32, 32]),
          ("simcnn_fm", simcnn_fm, [1, 28, 28])]


def main():
    torch.manual_seed(0)
    for name, build, shape in MODELS:
        for modular, suffix in ((True, ""), (False, "_standard")):
            model = build(modular).eval()
            with torch.no_grad():  # the layers must chain to [batch, 10]
                out = model(torch.zeros([2] + shape))
            assert tuple(out.shape) == (2, 10), (name, out.shape)
            print(name + suffix, sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main()
