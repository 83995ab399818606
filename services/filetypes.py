"""What a received file really is, from its bytes (never from the name or declared type).

`sniff` recognises the five kinds we accept: JPEG, PNG, WebP, HEIC and PDF. `polyglot_reason`
then asks whether the file is *also* something else — a JPEG that Adobe Reader opens as a PDF,
a photo with a ZIP/JAR glued on, a PDF with a payload after its end — using cheap byte checks
chosen so that ordinary phone photos and scanned PDFs do not trip them.

AVIF is refused: it is ISO-BMFF like HEIC and even declares the same `mif1` brand, but
pillow-heif is built without an AV1 decoder, so we could not review it. A HEIF file is accepted
only when its brands name the HEVC codec.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class FileKind:
    name: str    # "jpeg" | "png" | "webp" | "heic" | "pdf"
    mime: str
    family: str  # "image" | "pdf"


JPEG = FileKind("jpeg", "image/jpeg", "image")
PNG = FileKind("png", "image/png", "image")
WEBP = FileKind("webp", "image/webp", "image")
HEIC = FileKind("heic", "image/heic", "image")
HEIF = FileKind("heic", "image/heif", "image")  # HEVC image sequences only (no still-image brand)
PDF = FileKind("pdf", "application/pdf", "pdf")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_WEBP_CHUNKS = (b"VP8 ", b"VP8L", b"VP8X")
_HEVC_STILL_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis"})
_HEVC_SEQUENCE_BRANDS = frozenset({b"hevc", b"hevx"})
_AV1_BRANDS = frozenset({b"avif", b"avis"})
_MAX_FTYP = 4096  # a real ftyp box lists a handful of brands

# Adobe Reader finds "%PDF-" anywhere in the first 1024 bytes; that leeway is what JPEG/PDF
# polyglots rely on, so an image must not carry it there.
_PDF_HEADER_WINDOW = 1024
_MARKUP_WINDOW = 4096
_MARKUP = re.compile(rb"<(?:script|html|svg|\?php|iframe|!doctype\s+html)\b", re.IGNORECASE)
# Zip tools look for the end-of-central-directory record in the last 64 KiB + 22 bytes.
_ZIP_EOCD = b"PK\x05\x06"
_ZIP_TAIL_WINDOW = 22 + 0xFFFF
_TRAILER_ALLOWANCE = 1024  # some scanners pad after %%EOF; a payload is bigger than this
_FOREIGN_MAGIC = (b"PK\x03\x04", b"MZ", b"\x7fELF", b"\xff\xd8\xff", _PNG_SIGNATURE, b"%PDF-",
                  b"Rar!", b"7z\xbc\xaf", b"\x1f\x8b")
_PDF_END = re.compile(rb"startxref\s*\d+\s*%%EOF")


def sniff(data: bytes) -> FileKind | None:
    """The file's real kind from its leading bytes, or None when it is none we accept."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(_PNG_SIGNATURE):
        return PNG
    if len(data) >= 16 and data[:4] == b"RIFF" and data[8:12] == b"WEBP" \
            and data[12:16] in _WEBP_CHUNKS:
        return WEBP
    if data[4:8] == b"ftyp":
        return _sniff_heif(data)
    # Strictly at offset 0: the 1024-byte leeway readers allow is how polyglots are made.
    if data.startswith(b"%PDF-"):
        return PDF
    return None


def _sniff_heif(data: bytes) -> FileKind | None:
    size = struct.unpack(">I", data[:4])[0]
    if size < 16 or size > min(len(data), _MAX_FTYP) or size % 4:
        return None
    major = data[8:12]
    brands = {major} | {data[i:i + 4] for i in range(16, size, 4)}
    if major in _AV1_BRANDS:
        return None
    if brands & _HEVC_STILL_BRANDS:
        return HEIC
    if brands & _HEVC_SEQUENCE_BRANDS:
        return HEIF
    return None  # mif1/msf1 alone say nothing about the codec (AVIF declares them too)


def polyglot_reason(data: bytes, kind: FileKind) -> str | None:
    """Why a file of this kind is also another kind of file (a short code), or None."""
    if kind.family == "image":
        if b"%PDF-" in data[:_PDF_HEADER_WINDOW]:
            return "pdf_in_image"
        if _MARKUP.search(data[:_MARKUP_WINDOW]):
            return "markup_in_image"
        if _has_zip_directory(data):
            return "zip_appended"
        return None
    # A PDF's compressed streams can hold any bytes and an attached file (reported by
    # pdf_inspect) can be a whole ZIP, so only its tail and header are looked at. The tail
    # first: in a small PDF the header window reaches what was appended.
    trailing = _after_pdf_end(data)
    if trailing.startswith(b"PK\x03\x04") or _has_zip_directory(trailing):
        return "zip_appended"
    if len(trailing) > _TRAILER_ALLOWANCE or trailing.startswith(_FOREIGN_MAGIC) \
            or _MARKUP.search(trailing):
        return "data_after_pdf"
    if _MARKUP.search(data[:_PDF_HEADER_WINDOW]):
        return "markup_in_pdf"  # browsers sniff HTML near the start of a file
    return None


def _has_zip_directory(data: bytes) -> bool:
    """True when the tail holds a ZIP end record pointing back at a real central directory.

    Four magic bytes alone are not enough: JPEG and video data (motion photos append an MP4)
    are near-random, and looked for anywhere in a 5 MB photo "PK\\x05\\x06" turns up by
    chance in about one photo per thousand.
    """
    floor = max(0, len(data) - _ZIP_TAIL_WINDOW)
    end = len(data)
    while (pos := data.rfind(_ZIP_EOCD, floor, end)) != -1:
        end = pos
        record = data[pos:pos + 22]
        if len(record) < 22:
            continue
        _, disk, cd_disk, disk_entries, entries, cd_size, _, comment_len = \
            struct.unpack("<4sHHHHIIH", record)
        if pos + 22 + comment_len > len(data):
            continue
        if entries == 0xFFFF or cd_size == 0xFFFFFFFF:  # ZIP64: its locator sits just before
            if pos >= 20 and data[pos - 20:pos - 16] == b"PK\x06\x07":
                return True
            continue
        cd_start = pos - cd_size
        if disk == cd_disk and disk_entries == entries and entries >= 1 \
                and cd_size >= 46 * entries and cd_start >= 0 \
                and data[cd_start:cd_start + 4] == b"PK\x01\x02":
            return True
    return False


def _after_pdf_end(data: bytes) -> bytes:
    """What follows the PDF's final "startxref N %%EOF", padding stripped.

    The end is the last startxref section rather than the last "%%EOF", so a payload that
    merely ends in "%%EOF" does not hide itself.
    """
    start = data.rfind(b"startxref")
    found = _PDF_END.match(data, start) if start != -1 else None
    if found:
        end = found.end()
    else:
        eof = data.rfind(b"%%EOF")
        if eof == -1:
            return b""  # no proper ending at all; pdf_inspect decides whether it reads
        end = eof + len(b"%%EOF")
    return data[end:].strip(b"\x00\t\n\f\r ")
