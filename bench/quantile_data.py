#!/usr/bin/env python3
"""Writes transformed copies of the shared quality data sets, for trying an
input transform with bench/quality.sh and bench/rescore.sh before building
it into the normaliser (bench/RESULTS.md, detection quality, round 4).

  bench/quantile_data.py OUT [--mode qn|qu|both|skewT] [--data DIR]

Each feature is fitted on train.csv only (test labels are never read):
  qn     quantile-normal: the mid-rank empirical CDF of the training values
         (ties share one rank), then the normal quantile; between training
         values linear, beyond them linear with slope 1 / standard deviation
  qu     the same CDF scaled to a unit-variance uniform instead
  both   the qn columns followed by the standard-scaled ones (2d features)
  skewT  qn for the features with |skewness| > T, standard scaling for the
         rest
  kurtT  qn for the features with excess kurtosis > T, standard scaling
         for the rest
  mixA   A * qn + (1 - A) * standard scaling, per feature (e.g. mix0.5)
  yj     standard scaling, then a Yeo-Johnson power transform with the
         maximum-likelihood lambda (grid over [0, 2], so that neither tail is bounded), then standard scaling
Then: bench/quality.sh --data OUT --keep K; bench/rescore.sh --keep K --data OUT.
"""
import argparse
import os
from statistics import NormalDist

import numpy as np

inv_cdf = np.vectorize(NormalDist().inv_cdf)


def fit_rank_map(col, uniform):
    """Returns f(x) mapping raw values through the training CDF."""
    n = len(col)
    sd = col.std() or 1.0
    v = np.sort(col)
    u, first = np.unique(v, return_index=True)
    count = np.diff(np.append(first, n))
    mid = (first + 0.5 * count) / n  # mid-rank CDF at each distinct value
    if uniform:
        z = (mid - 0.5) * np.sqrt(12.0)
    else:
        z = inv_cdf(np.clip(mid, 0.5 / n, 1 - 0.5 / n))

    def f(x):
        if len(u) == 1:
            return (x - u[0]) / sd
        out = np.interp(x, u, z)
        lo, hi = x < u[0], x > u[-1]
        out[lo] = z[0] + (x[lo] - u[0]) / sd
        out[hi] = z[-1] + (x[hi] - u[-1]) / sd
        return out

    return f


def yeo_johnson(x, lam):
    out = np.empty_like(x)
    pos = x >= 0
    if abs(lam) < 1e-9:
        out[pos] = np.log1p(x[pos])
    else:
        out[pos] = (np.power(x[pos] + 1, lam) - 1) / lam
    if abs(lam - 2) < 1e-9:
        out[~pos] = -np.log1p(-x[~pos])
    else:
        out[~pos] = -(np.power(1 - x[~pos], 2 - lam) - 1) / (2 - lam)
    return out


def fit_yeo_johnson(col):
    """Returns f(x): standardise, Yeo-Johnson with the ML lambda, standardise."""
    m, sd = col.mean(), col.std() or 1.0
    s = (col - m) / sd
    jac = (np.sign(s) * np.log1p(np.abs(s))).sum()
    best, best_ll = 1.0, -np.inf
    for lam in np.linspace(0, 2, 41):
        t = yeo_johnson(s, lam)
        var = t.var()
        if not np.isfinite(var) or var <= 0:
            continue
        ll = -0.5 * len(s) * np.log(var) + (lam - 1) * jac
        if ll > best_ll:
            best, best_ll = lam, ll
    t = yeo_johnson(s, best)
    m2, sd2 = t.mean(), t.std() or 1.0
    return best, lambda x: (yeo_johnson((x - m) / sd, best) - m2) / sd2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--mode", default="qn")
    root = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--data", default=os.path.join(root, "..", "..", "shared", "data", "adbench"))
    a = ap.parse_args()
    for name in sorted(os.listdir(a.data)):
        src = os.path.join(a.data, name)
        train = np.genfromtxt(os.path.join(src, "train.csv"), delimiter=",", skip_header=1)
        test = np.genfromtxt(os.path.join(src, "test.csv"), delimiter=",", skip_header=1)
        x, y, label = train, test[:, :-1], test[:, -1]
        d = x.shape[1]
        lams = []
        qx, qy, sx, sy = (np.empty_like(m) for m in (x, y, x, y))
        for j in range(d):
            if a.mode == "yj":
                lam, f = fit_yeo_johnson(x[:, j])
                lams.append(lam)
            else:
                f = fit_rank_map(x[:, j], a.mode == "qu")
            qx[:, j], qy[:, j] = f(x[:, j]), f(y[:, j])
            m, sd = x[:, j].mean(), x[:, j].std() or 1.0
            sx[:, j], sy[:, j] = (x[:, j] - m) / sd, (y[:, j] - m) / sd
            if a.mode.startswith("kurt"):
                kurt = ((x[:, j] - m) ** 4).mean() / sd ** 4 - 3
                if kurt <= float(a.mode[4:]):
                    qx[:, j], qy[:, j] = sx[:, j], sy[:, j]
            if a.mode.startswith("skew"):
                skew = ((x[:, j] - m) ** 3).mean() / sd ** 3
                if abs(skew) <= float(a.mode[4:]):
                    qx[:, j], qy[:, j] = sx[:, j], sy[:, j]
            if a.mode.startswith("mix"):
                w = float(a.mode[3:])
                qx[:, j] = w * qx[:, j] + (1 - w) * sx[:, j]
                qy[:, j] = w * qy[:, j] + (1 - w) * sy[:, j]
        if a.mode == "both":
            qx, qy = np.column_stack([qx, sx]), np.column_stack([qy, sy])
        header = ",".join(f"f{i}" for i in range(qx.shape[1]))
        dst = os.path.join(a.out, name)
        os.makedirs(dst, exist_ok=True)
        np.savetxt(os.path.join(dst, "train.csv"), qx, delimiter=",", header=header,
                   comments="", fmt="%.7g")
        np.savetxt(os.path.join(dst, "test.csv"), np.column_stack([qy, label]), delimiter=",",
                   header=header + ",label", comments="", fmt="%.7g")
        print(name, x.shape[0], "rows", d, "features",
              "lambdas " + " ".join(f"{l:.2f}" for l in lams) if lams else "")


if __name__ == "__main__":
    main()
