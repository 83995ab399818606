"""Checks one received file before anyone relies on it: real type, size, safe decode, quality.

Runs in a job, never in a request. The type comes from the bytes (not what the phone declared);
images are decoded fully under Pillow's decompression-bomb limits turned into errors and a pixel
cap; PDFs are read with pypdf's limits and refused when encrypted or carrying scripts or launch
actions. A photo that decodes but cannot be read (too small, dark, glare, blurry) is refused with
the problems named, so the client gets a specific tip to retake it.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

from PIL import Image, ImageOps

from services.filetypes import FileKind, polyglot_reason, sniff
from services.pdf_inspect import inspect_pdf
from services.photo_quality import assess

try:  # HEIC/HEIF: what iPhones send
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - a dependency; kept optional for odd platforms
    pillow_heif = None

MAX_PIXELS = 60_000_000  # above any phone camera's default output (48 MP sensors bin to 12–24 MP)
MAX_PDF_PAGES = 200
MAX_BYTES = 25 * 1024 * 1024  # above every channel's cap (Telegram 20 MB), so channels bind first

# Active PDF content that is refused outright (scripts alone are flagged; see inspect()).
REFUSED_PDF_CONTENT = {"launch", "embedded_file", "import_data", "submit_form"}
# Problems the client can fix by sending something else, and those that quarantine the file.
QUARANTINE = ("undecodable", "decompression_bomb", "too_many_pixels", "polyglot")


@dataclass(frozen=True)
class Inspection:
    """What a file is and whether it can be filed. `problem` None means it can."""

    kind: FileKind | None
    problem: str | None = None
    quality: tuple[str, ...] = ()   # photo problems, most important first (when problem == "poor_quality")
    width: int | None = None
    height: int | None = None
    pages: int | None = None
    details: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def quarantined(self) -> bool:
        return self.problem in QUARANTINE

    def record(self) -> dict:
        """The JSON kept on the Document row (no file content)."""
        info = {"kind": self.kind.name if self.kind else None, "problem": self.problem,
                "quality": list(self.quality), "width": self.width, "height": self.height, "pages": self.pages}
        info.update(self.details)
        return {k: v for k, v in info.items() if v not in (None, [], {})}


def inspect(data: bytes, *, max_bytes: int = MAX_BYTES) -> Inspection:
    """Sniffs, checks size, decodes under limits and checks photo quality; never raises on bad input."""
    if not data:
        return Inspection(None, "empty")
    if len(data) > max_bytes:
        return Inspection(None, "too_large", details={"cap": max_bytes})
    kind = sniff(data)
    if kind is None:
        return Inspection(None, "unsupported_type")
    reason = polyglot_reason(data, kind)
    if reason:
        return Inspection(kind, "polyglot", details={"reason": reason})
    if kind.family == "pdf":
        report = inspect_pdf(data, max_pages=MAX_PDF_PAGES)
        details = {"active_content": list(report.active_content)} if report.active_content else {}
        problem = report.problem
        if problem == "pdf_active_content" and not set(report.active_content) & REFUSED_PDF_CONTENT:
            # USCIS's own fillable forms carry scripts: flagged for staff, and left out of the staff
            # copy (which keeps pages only), but not a reason to turn the client away.
            problem = "pdf_encrypted" if report.encrypted else None
        return Inspection(kind, problem, pages=report.pages or None, details=details)
    return _inspect_image(data, kind)


# Pillow's bomb check: past MAX_PIXELS it warns, past twice that it raises. Both are errors here,
# and the size is checked from the header before a single pixel is decoded.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


def decode_image(data: bytes) -> Image.Image:
    """Decodes fully under the bomb limits and applies EXIF orientation (raises on any bad file)."""
    image = Image.open(io.BytesIO(data))
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise Image.DecompressionBombError(f"{width}x{height} is over the pixel cap")
    image.load()  # a truncated or corrupt file fails here, not later in a staff member's browser
    return ImageOps.exif_transpose(image)


def _inspect_image(data: bytes, kind: FileKind) -> Inspection:
    try:
        image = decode_image(data)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return Inspection(kind, "decompression_bomb")
    except Exception as exc:  # any decoder error: quarantine, never crash the worker
        return Inspection(kind, "undecodable", details={"error": type(exc).__name__})
    width, height = image.size
    report = assess(image)
    if not report.ok:
        return Inspection(kind, "poor_quality", quality=tuple(report.problems), width=width, height=height,
                          details={"metrics": {k: round(float(v), 2) for k, v in report.metrics.items()}})
    return Inspection(kind, None, width=width, height=height)
