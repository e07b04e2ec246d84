#!/usr/bin/env python3
"""Writes the UCI handwritten digits (1,797 images of 8x8, the `digits.csv.gz` that
scikit-learn bundles) as a small real data set in the CIFAR-10 binary format: 1,437 training
and 360 test images (a seeded 80/20 split), each 8x8 image upscaled bilinearly to 32x32 and
repeated over the three channels. ato reads it with `dataset.name=cifar10 dataset.root=OUT`.

    pip download scikit-learn --no-deps -d /tmp/skl && cd /tmp/skl && \
        unzip -o -q scikit_learn-*.whl 'sklearn/datasets/data/digits.csv.gz'
    python3 scripts/digits_to_cifar.py /tmp/skl/sklearn/datasets/data/digits.csv.gz data/digits

No third-party Python package is needed; the same input gives byte-identical files.
"""
import gzip
import os
import random
import sys


def upscale(img8):
    """8x8 values in [0, 16] -> 32x32 bytes, bilinear with edge clamping (pixel centres)."""
    out = []
    for y in range(32):
        fy = (y + 0.5) / 4 - 0.5
        y0 = max(0, min(7, int(fy // 1)))
        y1 = min(7, y0 + 1)
        wy = min(1.0, max(0.0, fy - y0))
        for x in range(32):
            fx = (x + 0.5) / 4 - 0.5
            x0 = max(0, min(7, int(fx // 1)))
            x1 = min(7, x0 + 1)
            wx = min(1.0, max(0.0, fx - x0))
            v = (img8[y0][x0] * (1 - wy) * (1 - wx) + img8[y0][x1] * (1 - wy) * wx
                 + img8[y1][x0] * wy * (1 - wx) + img8[y1][x1] * wy * wx)
            out.append(int(round(v * 255 / 16)))
    return bytes(out)


def main():
    src, out = sys.argv[1], sys.argv[2]
    rows = [list(map(float, line.split(","))) for line in gzip.open(src, "rt") if line.strip()]
    samples = [(int(r[64]), [r[i * 8:(i + 1) * 8] for i in range(8)]) for r in rows]
    order = list(range(len(samples)))
    random.Random(0).shuffle(order)
    n_train = len(samples) * 4 // 5
    folder = os.path.join(out, "cifar-10-batches-bin")
    os.makedirs(folder, exist_ok=True)

    def record(i):
        label, img = samples[i]
        plane = upscale(img)
        return bytes([label]) + plane * 3

    train = [record(i) for i in order[:n_train]]
    test = [record(i) for i in order[n_train:]]
    per = -(-len(train) // 5)
    for b in range(5):
        with open(os.path.join(folder, f"data_batch_{b + 1}.bin"), "wb") as f:
            f.write(b"".join(train[b * per:(b + 1) * per]))
    with open(os.path.join(folder, "test_batch.bin"), "wb") as f:
        f.write(b"".join(test))
    with open(os.path.join(folder, "batches.meta.txt"), "w") as f:
        f.write("\n".join(str(d) for d in range(10)) + "\n")
    print(f"wrote {len(train)} training and {len(test)} test images to {folder}")


if __name__ == "__main__":
    main()
