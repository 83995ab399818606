"""Benchmark services.photo_quality on the labelled synthetic photos of services.photo_samples.

Scores the "holdout" split (never used to choose thresholds) and the "train" split: precision
and recall of "flag as bad" (bad = any label but "good"), per problem, a confusion table of
label against the first problem reported, and the time per photo, with a 12-megapixel photo
timed on its own. `--calibrate` prints, on the train split only, the distribution per label of
every metric a threshold applies to, and for each the cut between the good photos and that
problem's photos with the fewest train errors (ties: the middle of the widest gap); the
constants in services/photo_quality.py are those figures, rounded.

Run from the repo root:  python bench/photo_quality.py [--n 100] [--train-n 150] [--calibrate]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from services import photo_quality as pq  # noqa: E402
from services.photo_samples import LABELS, SPLITS, generate  # noqa: E402

MAX_LISTED = 12


def _score(job: tuple[str, int]) -> dict:
    label, seed = job
    image = generate(seed, label)
    t0 = time.perf_counter()
    report = pq.assess(image)
    ms = (time.perf_counter() - t0) * 1000
    return {"label": label, "seed": seed, "problems": report.problems, "metrics": report.metrics, "ms": ms}


def run(split: str, n: int, workers: int, offset: int = 0) -> list[dict]:
    base = SPLITS[split] + offset
    jobs = [(label, seed) for seed in range(base, base + n) for label in LABELS]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_score, jobs, chunksize=2))


def pct(ok: int, n: int) -> str:
    return f"{ok / n:6.1%} ({ok}/{n})" if n else "   n/a       "


def report(split: str, rows: list[dict]) -> None:
    print(f"\n== {split}: {len(rows)} photos, {len(rows) // len(LABELS)} per label ==")
    bad = [r["label"] != "good" for r in rows]
    flagged = [bool(r["problems"]) for r in rows]
    tp = sum(b and f for b, f in zip(bad, flagged))
    print(f"flag as bad      precision {pct(tp, sum(flagged))}   recall {pct(tp, sum(bad))}")
    print("per problem      precision                recall (reported)        recall (reported first)")
    for p in pq.PROBLEMS:
        flagged_p = [r for r in rows if p in r["problems"]]
        actual = [r for r in rows if r["label"] == p]
        hits = sum(r["label"] == p for r in flagged_p)
        first = sum(bool(r["problems"]) and r["problems"][0] == p for r in actual)
        print(f"  {p:<14} {pct(hits, len(flagged_p)):<24} {pct(hits, len(actual)):<24}"
              f" {pct(first, len(actual))}")
    print("confusion: label -> first problem reported")
    cols = ("ok",) + pq.PROBLEMS
    print(f"  {'':<11}" + "".join(f"{c:>11}" for c in cols))
    for label in LABELS:
        c = Counter((r["problems"][0] if r["problems"] else "ok") for r in rows if r["label"] == label)
        print(f"  {label:<11}" + "".join(f"{c.get(col, 0):>11}" for col in cols))
    wrong = [r for r in rows if (r["label"] == "good") != (not r["problems"])
             or (r["problems"] and r["label"] != "good" and r["problems"][0] != r["label"])]
    print(f"misjudged (max {MAX_LISTED}):" + ("" if wrong else " none"))
    for r in wrong[:MAX_LISTED]:
        m = r["metrics"]
        print(f"  {r['label']:<10} seed {r['seed']:<7} -> {','.join(r['problems']) or 'ok':<22}"
              f" p95={m['p95']:.0f} clipped={m['bright_fraction']:.3f} p0.1={m['p0.1']:.0f}"
              f" blob={m['glare_blob']:.3f} elsewhere={m['sat_elsewhere']:.3f} sharp={m['sharpness']:.3f}")
    if len(wrong) > MAX_LISTED:
        print(f"  ... and {len(wrong) - MAX_LISTED} more")
    ms = np.array([r["ms"] for r in rows])
    print(f"time per photo (in the worker processes): mean {ms.mean():.1f} ms,"
          f" p95 {np.percentile(ms, 95):.1f} ms, max {ms.max():.1f} ms")


def summary(n: int = 30, workers: int | None = None) -> None:
    """A few lines for other benches (bench/documents.py): holdout precision and recall."""
    rows = run("holdout", n, workers or os.cpu_count() or 1)
    bad = [r["label"] != "good" for r in rows]
    flagged = [bool(r["problems"]) for r in rows]
    tp = sum(b and f for b, f in zip(bad, flagged))
    print(f"photo quality, holdout ({n} synthetic photos per label; detail: bench/photo_quality.py)")
    print(f"  flag as bad      precision {pct(tp, sum(flagged))}   recall {pct(tp, sum(bad))}")
    for p in pq.PROBLEMS:
        flagged_p = [r for r in rows if p in r["problems"]]
        hits = sum(r["label"] == p for r in flagged_p)
        print(f"  {p:<14}   precision {pct(hits, len(flagged_p))}   recall {pct(hits, n)}")


def time_12mp() -> None:
    image = generate(SPLITS["holdout"], "good", size=(4000, 3000))
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        rep = pq.assess(image)
        times.append((time.perf_counter() - t0) * 1000)
    print(f"\n12 MP photo (4000x3000 RGB): best {min(times):.0f} ms, median {float(np.median(times)):.0f} ms"
          f" per assess()  -> {','.join(rep.problems) or 'ok'}")


def _best_threshold(pos: np.ndarray, neg: np.ndarray, flag_below: bool) -> tuple[float, int, int]:
    """The cut that makes the fewest train errors (missed + false); among equally good cuts, the
    middle of the widest gap between neighbouring values."""
    values = np.unique(np.concatenate([pos, neg]))
    edges = np.concatenate([[values[0] - 1], values, [values[-1] + 1]])
    best = None
    for lo, hi in zip(edges[:-1], edges[1:]):  # every cut in (lo, hi] flags the same photos
        c = (lo + hi) / 2
        fn = int((pos >= c).sum() if flag_below else (pos < c).sum())
        fp = int((neg < c).sum() if flag_below else (neg >= c).sum())
        key = (fn + fp, -(hi - lo))
        if best is None or key < best[0]:
            best = (key, float(c), fn, fp)
    return best[1], best[2], best[3]


def _dist(values: list[float]) -> str:
    if not values:
        return "(none)"
    v = np.array(values)
    return "  ".join(f"{x:8.3f}" for x in np.percentile(v, [0, 5, 50, 95, 100])) + f"   n={len(v)}"


def calibrate(rows: list[dict]) -> None:
    print("\n== calibration on train: per label  min / 5th / median / 95th / max ==")

    def metric(r, k):
        return r["metrics"].get(k, 0.0)

    rules = [  # (problem, metric, flag_below, which photos the rule is tried on, current threshold)
        ("too_dark", "p95", True, lambda r: True, pq.MAX_DARK_P95),
        ("too_bright", "bright_fraction", False,
         lambda r: metric(r, "p0.1") >= pq.BRIGHT_DARKEST, pq.BRIGHT_CLIPPED),
        ("too_bright", "p0.1", False,
         lambda r: metric(r, "bright_fraction") >= pq.BRIGHT_CLIPPED, pq.BRIGHT_DARKEST),
        ("glare", "glare_blob", False,
         lambda r: r["label"] != "too_bright" and metric(r, "sat_elsewhere") < pq.GLARE_MAX_ELSEWHERE,
         pq.GLARE_MIN_BLOB),
        ("glare", "sat_elsewhere", True,
         lambda r: r["label"] != "too_bright" and metric(r, "glare_blob") >= pq.GLARE_MIN_BLOB,
         pq.GLARE_MAX_ELSEWHERE),
        ("blurry", "sharpness", True,
         lambda r: r["label"] not in ("too_small", "too_dark", "too_bright"), pq.MIN_SHARPNESS),
    ]
    for problem, key, below, applies, current in rules:
        subset = [r for r in rows if applies(r)]
        print(f"\n{key}  (rule: {problem} when {key} {'<' if below else '>='} threshold; "
              f"photos the rule is tried on: {len(subset)})")
        for label in LABELS:
            print(f"  {label:<11} {_dist([metric(r, key) for r in subset if r['label'] == label])}")
        pos = np.array([metric(r, key) for r in subset if r["label"] == problem])
        neg = np.array([metric(r, key) for r in subset if r["label"] == "good"])
        if len(pos) and len(neg):
            cut, fn, fp = _best_threshold(pos, neg, below)
            cur_fn = int((pos >= current).sum() if below else (pos < current).sum())
            cur_fp = int((neg < current).sum() if below else (neg >= current).sum())
            print(f"  good vs {problem}: fewest train errors at {cut:.4g} (missed {fn}, false {fp});"
                  f" module uses {current:g} (missed {cur_fn}, false {cur_fp})")
    sizes = [min(metric(r, "width"), metric(r, "height")) for r in rows]
    print("\nshorter side (too_small is a definition: < "
          f"{pq.MIN_SHORT_SIDE} px):")
    for label in LABELS:
        print(f"  {label:<11} {_dist([s for s, r in zip(sizes, rows) if r['label'] == label])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="holdout photos per label (default 100)")
    parser.add_argument("--train-n", type=int, default=150, help="train photos per label (default 150)")
    parser.add_argument("--offset", type=int, default=0, help="skip the first holdout seeds")
    parser.add_argument("--calibrate", action="store_true", help="metric distributions on the train split")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    t0 = time.perf_counter()
    train = run("train", args.train_n, args.workers)
    if args.calibrate:
        calibrate(train)
        return 0
    holdout = run("holdout", args.n, args.workers, args.offset)
    print(f"generated and assessed {len(train) + len(holdout)} photos in {time.perf_counter() - t0:.0f} s"
          f" ({args.workers} processes)")
    report("holdout", holdout)
    report("train", train)
    time_12mp()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
