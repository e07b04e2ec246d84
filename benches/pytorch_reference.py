#!/usr/bin/env python3
"""PyTorch reference for `ato bench`: the same architectures, thread count, batch and step.

Measures full training steps (train-mode forward + cross-entropy + backward + plain SGD update)
and eval-mode inference on random input, and writes JSON with the keys `ato bench --json`
prints (`model`, `mode`, `batch`, `backend`, `threads`, `images_per_second`, `ms_per_step`).
`ato bench --pytorch` runs this script for the same settings and prints the same-run ratio;
without `--pytorch`, `ato bench` shows the stored `benches/pytorch_reference_results.json` figure
labelled "stored, <date>, <machine>" and no ratio. `--device cuda` times on the GPU.

The models mirror ato-models' defaults:
- CIFAR ResNet-20/32/56/110 (He et al. 2016): 3x3 stem to 16 channels, three stages of
  basic blocks at 16/32/64 channels, option-B shortcuts (1x1 conv + BN where the shape
  changes), global average pooling, linear classifier;
- MobileNetV2 (torchvision layout, no dropout), stride-1 stem for 32x32 inputs;
- ImageNet ResNet-18/34 (basic) and ResNet-50 (bottleneck v1.5) for `--dataset imagenet`.

Usage (torch installed; the CPU wheel is enough):
    python benches/pytorch_reference.py                     # resnet20 + resnet56, train + infer
    python benches/pytorch_reference.py --models resnet56 mobilenetv2 --modes train \
        --batch 128 --iters 20 --warmup 3 --threads 2 --out results.json
    python benches/pytorch_reference.py --models resnet56 --modes train --serve   # see serve()
"""

import argparse
import sys
import json
import platform
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn(cin, cout, k, stride, groups=1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    )


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = conv_bn(cin, planes, 3, stride)
        self.conv2 = conv_bn(planes, planes, 3, 1)
        self.shortcut = None
        if stride != 1 or cin != planes:
            self.shortcut = conv_bn(cin, planes, 1, stride)

    def forward(self, x):
        h = F.relu(self.conv1(x))
        h = self.conv2(h)
        s = x if self.shortcut is None else self.shortcut(x)
        return F.relu(h + s)


class Bottleneck(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        out = planes * 4
        self.conv1 = conv_bn(cin, planes, 1, 1)
        self.conv2 = conv_bn(planes, planes, 3, stride)
        self.conv3 = conv_bn(planes, out, 1, 1)
        self.shortcut = None
        if stride != 1 or cin != out:
            self.shortcut = conv_bn(cin, out, 1, stride)

    def forward(self, x):
        h = F.relu(self.conv1(x))
        h = F.relu(self.conv2(h))
        h = self.conv3(h)
        s = x if self.shortcut is None else self.shortcut(x)
        return F.relu(h + s)


class ResNet(nn.Module):
    def __init__(self, stages, num_classes, imagenet, bottleneck=False, base=None):
        super().__init__()
        base = base or (64 if imagenet else 16)
        self.imagenet = imagenet
        self.stem = conv_bn(3, base, 7 if imagenet else 3, 2 if imagenet else 1)
        block = Bottleneck if bottleneck else BasicBlock
        expansion = 4 if bottleneck else 1
        layers, cin = [], base
        for i, n in enumerate(stages):
            planes = base * 2**i
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(block(cin, planes, stride))
                cin = planes * expansion
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        h = F.relu(self.stem(x))
        if self.imagenet:
            h = F.max_pool2d(h, 3, 2, 1)
        h = self.layers(h)
        return self.fc(h.mean((2, 3)))


def make_divisible(v, d=8):
    new = max(d, int(v + d / 2) // d * d)
    return new + d if new < 0.9 * v else new


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        self.expand = conv_bn(cin, hidden, 1, 1) if t != 1 else None
        self.dw = conv_bn(hidden, hidden, 3, stride, groups=hidden)
        self.project = conv_bn(hidden, cout, 1, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        h = x
        if self.expand is not None:
            h = F.relu6(self.expand(h))
        h = F.relu6(self.dw(h))
        h = self.project(h)
        return h + x if self.residual else h


class MobileNetV2(nn.Module):
    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, num_classes, stem_stride, width_mult=1.0):
        super().__init__()
        cin = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        self.stem = conv_bn(3, cin, 3, stem_stride)
        blocks = []
        for t, c, n, s in self.SETTINGS:
            cout = make_divisible(c * width_mult)
            for i in range(n):
                blocks.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = conv_bn(cin, last, 1, 1)
        self.classifier = nn.Linear(last, num_classes)

    def forward(self, x):
        h = F.relu6(self.stem(x))
        h = self.blocks(h)
        h = F.relu6(self.head(h))
        return self.classifier(h.mean((2, 3)))


CIFAR_DEPTHS = {"resnet20": 3, "resnet32": 5, "resnet56": 9, "resnet110": 18}
IMAGENET = {"resnet18": ([2, 2, 2, 2], False), "resnet34": ([3, 4, 6, 3], False),
            "resnet50": ([3, 4, 6, 3], True)}


def build(name, dataset):
    classes = {"cifar10": 10, "cifar100": 100, "imagenet": 1000}[dataset]
    size = 224 if dataset == "imagenet" else 32
    if name in CIFAR_DEPTHS:
        return ResNet([CIFAR_DEPTHS[name]] * 3, classes, imagenet=False), size, classes
    if name in IMAGENET:
        stages, bottleneck = IMAGENET[name]
        return ResNet(stages, classes, imagenet=True, bottleneck=bottleneck), size, classes
    if name == "mobilenetv2":
        return MobileNetV2(classes, 1 if size <= 64 else 2), size, classes
    raise SystemExit(f"unknown model {name}")


def make_step(model, mode, batch, size, classes, device="cpu"):
    """One step of `mode` on random input, and it returns only when the device is done."""
    model = model.to(device)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, classes, (batch,), device=device)

    def sync():
        if device != "cpu":
            torch.cuda.synchronize(device)
    if mode == "train":
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            sync()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                model(x)
            sync()
    return step


def bench(model, mode, batch, size, classes, iters, warmup, device="cpu"):
    step = make_step(model, mode, batch, size, classes, device)
    for _ in range(warmup):
        step()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    # Median step: robust to the noise of a shared 2-core machine.
    times.sort()
    median = times[len(times) // 2]
    return {"ms_per_step": median * 1e3, "images_per_second": batch / median,
            "best_ms_per_step": times[0] * 1e3}


def serve(model, mode, batch, size, classes, warmup, device="cpu"):
    """`--serve`: after the warm-up prints `ready`, then times one step per `step` line read
    from stdin and prints its seconds, until stdin closes. `ato bench --pytorch` drives it so
    that blocks of its own steps and of PyTorch's alternate: both see the same stretch of a
    shared machine."""
    step = make_step(model, mode, batch, size, classes, device)
    for _ in range(warmup):
        step()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "step":
            raise SystemExit(f"--serve: expected `step`, got {line.strip()!r}")
        t0 = time.perf_counter()
        step()
        print(time.perf_counter() - t0, flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["resnet20", "resnet56"])
    p.add_argument("--modes", nargs="+", default=["train", "infer"], choices=["train", "infer"])
    p.add_argument("--dataset", default="cifar10", choices=["cifar10", "cifar100", "imagenet"])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--out", default="benches/pytorch_reference_results.json")
    p.add_argument("--serve", action="store_true",
                   help="time one step per `step` line on stdin (the first model and mode)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.serve:
        model, size, classes = build(a.models[0], a.dataset)
        serve(model, a.modes[0], a.batch, size, classes, a.warmup, a.device)
        return
    results = []
    for name in a.models:
        model, size, classes = build(name, a.dataset)
        for mode in a.modes:
            r = bench(model, mode, a.batch, size, classes, a.iters, a.warmup, a.device)
            r = {"model": name, "mode": mode, "dataset": a.dataset, "batch": a.batch,
                 "backend": "pytorch", "device": a.device, "threads": a.threads, **r}
            print(json.dumps(r))
            results.append(r)
    machine = platform.processor() or platform.machine()
    if a.device != "cpu":
        machine = torch.cuda.get_device_name(a.device)
    doc = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "torch_version": torch.__version__, "machine": machine,
           "threads": a.threads, "results": results}
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
