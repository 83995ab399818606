"""Real files for tests: phone-like photos (from the project's labelled generator) and PDFs."""
from __future__ import annotations

import io
from functools import lru_cache

from PIL import Image
from pypdf import PdfWriter

from services.photo_samples import generate

HOLDOUT = 100_000  # seeds the quality thresholds were not chosen on


@lru_cache(maxsize=64)
def photo(label: str = "good", seed: int = 1, size: tuple[int, int] | None = (1600, 1200), fmt: str = "JPEG",
          exif: bytes | None = None) -> bytes:
    """A photo of a document, good or with one labelled problem, encoded as a phone would."""
    image = generate(HOLDOUT + seed, label, size=size)
    out = io.BytesIO()
    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
    kwargs = {"quality": 88} if fmt in ("JPEG", "HEIF", "WEBP") else {}
    if exif is not None:
        kwargs["exif"] = exif
    image.convert("RGB").save(out, format=fmt, **kwargs)
    return out.getvalue()


def pdf(pages: int = 2, *, javascript: bool = False, launch: bool = False, password: str | None = None) -> bytes:
    """A PDF of blank pages; optionally with a document-level script, a launch action or a password."""
    from pypdf.generic import DictionaryObject, NameObject, TextStringObject

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=612, height=792)
    if javascript:
        writer.add_open_action(DictionaryObject({NameObject("/S"): NameObject("/JavaScript"),
                                                 NameObject("/JS"): TextStringObject("app.alert('hi');")}))
    if launch:
        writer.add_open_action(DictionaryObject({NameObject("/S"): NameObject("/Launch"),
                                                 NameObject("/F"): TextStringObject("cmd.exe")}))
    if password is not None:
        writer.encrypt(password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def exif_with_gps(orientation: int = 6) -> bytes:
    """EXIF with an orientation tag and a GPS position, as a phone writes it."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    gps = {1: "N", 2: (40.0, 26.0, 46.0), 3: "W", 4: (79.0, 58.0, 56.0)}
    exif[0x8825] = gps
    return exif.tobytes()
