"""Oracle for shared/tests/metrics_parity.rs: scikit-learn metrics on random scores with ties.

Usage: python metrics_sklearn.py OUT_DIR
Writes OUT_DIR/metrics_cases.json: a list of cases, each with scores, labels (0/1) and
scikit-learn's roc_auc_score, average_precision_score, the best-F1 operating point from
precision_recall_curve (first argmax over increasing thresholds = the lowest threshold among
equal F1), and precision/recall/F1 at a fixed threshold (score >= threshold is positive).
"""
import json
import sys

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)


def case(rng, n, n_levels, pos_rate):
    y = (rng.random(n) < pos_rate).astype(np.int64)
    y[0], y[1] = 0, 1  # both classes present
    # few distinct levels -> many ties; positives shifted up a little
    s = rng.integers(0, n_levels, size=n).astype(np.float64) / n_levels + 0.3 * y * rng.random(n)
    s = np.round(s, 3)
    p, r, t = precision_recall_curve(y, s)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(p[:-1] + r[:-1] > 0, 2 * p[:-1] * r[:-1] / (p[:-1] + r[:-1]), 0.0)
    k = int(np.argmax(f1))
    fixed = float(np.median(s))
    pred = (s >= fixed).astype(np.int64)
    return {
        "scores": s.tolist(),
        "labels": y.tolist(),
        "auroc": float(roc_auc_score(y, s)),
        "ap": float(average_precision_score(y, s)),
        "best_threshold": float(t[k]),
        "best_f1": float(f1[k]),
        "best_precision": float(p[k]),
        "best_recall": float(r[k]),
        "fixed_threshold": fixed,
        "fixed_f1": float(f1_score(y, pred, zero_division=0)),
        "fixed_precision": float(precision_score(y, pred, zero_division=0)),
        "fixed_recall": float(recall_score(y, pred, zero_division=0)),
    }


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(1234)
    cases = []
    for n, levels, rate in [(50, 5, 0.5), (200, 20, 0.3), (1000, 50, 0.1), (333, 1000, 0.6), (64, 2, 0.5)]:
        cases.append(case(rng, n, levels, rate))
    with open(f"{out}/metrics_cases.json", "w") as f:
        json.dump(cases, f)


if __name__ == "__main__":
    main()
