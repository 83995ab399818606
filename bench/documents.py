"""Benchmark the document pipeline: sniff → validate → quality check → fingerprint → encrypt → store.

Times a 12-megapixel phone JPEG and a 10-page PDF through `services.intake.check` and
`services.vault.Vault.put` (what a worker does with each downloaded file), prints ms per file
and MB/s next to `sha256sum` of the same bytes, then the staff-copy build for the photo, and
finally the photo quality checker's precision and recall on the project's labelled set
(bench/photo_quality.py has the per-problem detail).

Run from the repo root:  python bench/documents.py [--runs N]
"""
from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402
from pypdf import PdfWriter  # noqa: E402

from services import intake  # noqa: E402
from services.photo_samples import generate  # noqa: E402
from services.staff_copy import combine  # noqa: E402
from services.vault import MasterKeys, Vault, new_master_key  # noqa: E402


def twelve_megapixel_jpeg() -> bytes:
    image = generate(100_001, "good", size=(4000, 3000))
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=90)
    return out.getvalue()


def ten_page_pdf() -> bytes:
    """Ten scanned-looking pages (a JPEG per page, as phone scanner apps make them)."""
    writer = PdfWriter()
    for page in range(10):
        image = generate(100_100 + page, "good", size=(1700, 2200)).convert("RGB")
        buf = io.BytesIO()
        image.save(buf, format="PDF", resolution=200.0)
        from pypdf import PdfReader

        writer.append(PdfReader(io.BytesIO(buf.getvalue())))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def sha256sum_seconds(data: bytes, runs: int) -> float | None:
    if not shutil.which("sha256sum"):
        return None
    with tempfile.NamedTemporaryFile() as fh:
        fh.write(data)
        fh.flush()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(["sha256sum", fh.name], check=True, capture_output=True)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def pipeline(name: str, data: bytes, vault: Vault, runs: int) -> None:
    times, verdict = [], None
    for _ in range(runs):
        start = time.perf_counter()
        verdict = intake.check(data, None)
        vault.put(data)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    mb = len(data) / 1e6
    line = f"{name:24} {mb:6.2f} MB  {median * 1000:7.1f} ms/file  {mb / median:7.1f} MB/s  verdict={verdict.status}"
    baseline = sha256sum_seconds(data, runs)
    if baseline:
        line += f"   | sha256sum (incl. process start) {baseline * 1000:6.1f} ms, {mb / baseline:7.1f} MB/s"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        vault = Vault(Path(tmp), MasterKeys.parse(new_master_key()))
        photo, document = twelve_megapixel_jpeg(), ten_page_pdf()
        w, h = Image.open(io.BytesIO(photo)).size
        print(f"files: JPEG {w}x{h} ({w * h / 1e6:.1f} MP), PDF 10 pages; median of {args.runs} runs\n")
        pipeline("12 MP photo (JPEG)", photo, vault, args.runs)
        pipeline("10-page PDF", document, vault, args.runs)
        start = time.perf_counter()
        combine([("image", photo)])
        print(f"{'staff copy of the photo':24} {'':9}  {(time.perf_counter() - start) * 1000:7.1f} ms (a separate job)")
    print()
    try:
        from bench.photo_quality import summary
    except ImportError:
        sys.path.insert(0, str(ROOT / "bench"))
        from photo_quality import summary  # type: ignore
    summary()


if __name__ == "__main__":
    main()
