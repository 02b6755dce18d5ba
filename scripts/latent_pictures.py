#!/usr/bin/env python3
"""Draws the README's latent-space pictures (a documentation tool: nothing
builds, tests or runs with it; it needs Debian's python3-matplotlib).

  latent_pictures.py map ENCODED.csv OUT.png
      `anomalyctl encode` output of scripts/digits.awk records (ids "D-N",
      D the digit class): z0 against z1, one colour per class.
  latent_pictures.py samples PROBS.csv DRAWS.csv OUT.png
      `anomalyctl sample` and `anomalyctl sample --draws` output of a model
      with 8x8 pixel features (p00..p77): one row of pictures each.
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def latent_map(encoded, out):
    header, rows = read(encoded)
    iz0, iz1 = header.index("z0"), header.index("z1")
    by_class = {}
    for r in rows:
        digit = r[header.index("id")].split("-")[0]
        by_class.setdefault(digit, []).append((float(r[iz0]), float(r[iz1])))
    fig, ax = plt.subplots(figsize=(4.5, 4), dpi=80)
    for digit in sorted(by_class):
        xs, ys = zip(*by_class[digit])
        ax.scatter(xs, ys, s=6, alpha=0.6, label=digit)
    ax.set_xlabel("z0")
    ax.set_ylabel("z1")
    ax.set_title("anomalyctl encode: 4s were not in training", fontsize=10)
    ax.legend(title="digit", markerscale=2, fontsize=8)
    fig.tight_layout()
    fig.savefig(out)


def samples(probs, draws, out):
    rows = [read(probs)[1], read(draws)[1]]
    n = min(len(rows[0]), len(rows[1]), 8)
    fig, axes = plt.subplots(2, n, figsize=(n * 0.8, 2), dpi=80)
    for i, (title, part) in enumerate(zip(["probabilities", "draws"], rows)):
        for j in range(n):
            ax = axes[i][j]
            pixels = [[float(part[j][r * 8 + c]) for c in range(8)] for r in range(8)]
            ax.imshow(pixels, cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i][0].set_ylabel(title, fontsize=7)
    fig.suptitle("anomalyctl sample (seed 1)", fontsize=8)
    fig.tight_layout()
    fig.savefig(out)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "map":
        latent_map(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "samples":
        samples(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
