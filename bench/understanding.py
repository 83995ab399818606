"""Benchmark language detection and intent classification on tests/data/messages.jsonl.

tests/data/holdout_fresh.jsonl (messages written without looking at the
classifier or at messages.jsonl) is scored separately under split "fresh";
the overall figures stay on messages.jsonl.

Run from the repo root:  python bench/understanding.py
"""

from __future__ import annotations

import json
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.intents import INTENTS, classify_intent  # noqa: E402
from bot.language import detect_language  # noqa: E402

DATASET = ROOT / "tests" / "data" / "messages.jsonl"
FRESH = ROOT / "tests" / "data" / "holdout_fresh.jsonl"
MAX_CONFUSIONS = 20


def load(path: Path = DATASET) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def word_count(text: str) -> int:
    return sum(1 for w in text.split() if any(c.isalpha() for c in w))


def pct(ok: int, n: int) -> str:
    return f"{ok / n:6.1%} ({ok}/{n})" if n else "   n/a"


def time_per_call(fn, args_list, repeat: int = 5) -> float:
    """Best-of-`repeat` mean microseconds per call over args_list."""
    for args in args_list:  # warm caches / lazy model
        fn(*args)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for args in args_list:
            fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best / len(args_list) * 1e6


def _norm(text: str) -> str:
    """Lowercase, accent- and punctuation-free text, for spotting overlaps."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join("".join(c if c.isalnum() else " " for c in text).split())


def report_fresh(fresh: list[dict], known_texts: set[str]) -> None:
    """Accuracy on holdout_fresh.jsonl, kept out of the messages.jsonl totals."""
    lang = [detect_language(r["text"]) == r["language"] for r in fresh]
    intent = [classify_intent(r["text"], detect_language(r["text"])) == r["intent"] for r in fresh]
    long_idx = [i for i, r in enumerate(fresh) if word_count(r["text"]) >= 3]
    known = {_norm(t) for t in known_texts}
    novel = [i for i, r in enumerate(fresh) if _norm(r["text"]) not in known]
    print(f"  {'fresh':<10} intent {pct(sum(intent), len(fresh))}"
          f"   language {pct(sum(lang), len(fresh))}"
          f"   language >=3 words {pct(sum(lang[i] for i in long_idx), len(long_idx))}"
          f"   [separate file: {FRESH.name}]")
    print(f"  {'fresh-new':<10} intent {pct(sum(intent[i] for i in novel), len(novel))}"
          f"   (fresh messages not also in {DATASET.name})")
    wrong = [(r, "intent") for r, ok in zip(fresh, intent) if not ok]
    wrong += [(r, "lang") for r, ok in zip(fresh, lang) if not ok]
    for r, what in wrong[:MAX_CONFUSIONS]:
        print(f"      {r['text']!r:<60} {what} {r['intent'] if what == 'intent' else r['language']}"
              f" -> {classify_intent(r['text']) if what == 'intent' else detect_language(r['text'])}")


def main() -> int:
    rows = load()
    n = len(rows)
    langs = Counter(r["language"] for r in rows)
    print(f"dataset: {n} messages  ({', '.join(f'{k}={v}' for k, v in sorted(langs.items()))})")

    lang_pred = [detect_language(r["text"]) for r in rows]
    intent_pred = [classify_intent(r["text"], lp) for r, lp in zip(rows, lang_pred)]

    lang_ok = [p == r["language"] for p, r in zip(lang_pred, rows)]
    long_idx = [i for i, r in enumerate(rows) if word_count(r["text"]) >= 3]
    intent_ok = [p == r["intent"] for p, r in zip(intent_pred, rows)]

    print()
    print(f"language accuracy (all, prior=None):  {pct(sum(lang_ok), n)}")
    print(f"language accuracy (>=3 words):        {pct(sum(lang_ok[i] for i in long_idx), len(long_idx))}")
    short_idx = [i for i in range(n) if i not in set(long_idx)]
    print(f"language accuracy (<3 words):         {pct(sum(lang_ok[i] for i in short_idx), len(short_idx))}")
    print(f"intent accuracy:                      {pct(sum(intent_ok), n)}")

    # Messages written after the classifier existed carry "split": "holdout*".
    splits = sorted({r["split"] for r in rows if r.get("split")})
    for split in splits:
        idx = [i for i, r in enumerate(rows) if r.get("split") == split]
        print(f"  {split:<10} intent {pct(sum(intent_ok[i] for i in idx), len(idx))}"
              f"   language {pct(sum(lang_ok[i] for i in idx), len(idx))}")

    if FRESH.exists():
        report_fresh(load(FRESH), {r["text"] for r in rows})

    print("\nper-intent accuracy:")
    per = defaultdict(lambda: [0, 0])
    for r, ok in zip(rows, intent_ok):
        per[r["intent"]][0] += ok
        per[r["intent"]][1] += 1
    for intent in INTENTS:
        ok, tot = per.get(intent, [0, 0])
        print(f"  {intent:<13} {pct(ok, tot)}")

    print(f"\nmisclassified (max {MAX_CONFUSIONS}):")
    shown = 0
    for r, lp, ip in zip(rows, lang_pred, intent_pred):
        problems = []
        if ip != r["intent"]:
            problems.append(f"intent {r['intent']} -> {ip}")
        if lp != r["language"]:
            problems.append(f"lang {r['language']} -> {lp}")
        if problems:
            shown += 1
            if shown <= MAX_CONFUSIONS:
                print(f"  {r['text']!r:<60} {'; '.join(problems)}")
    if shown > MAX_CONFUSIONS:
        print(f"  ... and {shown - MAX_CONFUSIONS} more")
    if shown == 0:
        print("  (none)")

    texts = [(r["text"],) for r in rows]
    lang_args = [(r["text"], None) for r in rows]
    intent_args = [(r["text"], lp) for r, lp in zip(rows, lang_pred)]
    print("\ntiming (mean over dataset, best of 5):")
    print(f"  detect_language  {time_per_call(detect_language, lang_args):8.1f} µs/call")
    print(f"  classify_intent  {time_per_call(classify_intent, intent_args):8.1f} µs/call")
    from bot.language import explicit_switch
    print(f"  explicit_switch  {time_per_call(explicit_switch, texts):8.1f} µs/call")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
