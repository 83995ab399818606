"""services.filetypes: the real kind from the bytes, and files that are also something else."""
from __future__ import annotations

import io
import random
import struct
import zipfile

import pillow_heif
import pytest
from PIL import Image
from pypdf import PdfWriter

from services.filetypes import FileKind, polyglot_reason, sniff

pillow_heif.register_heif_opener()


def _photo(fmt: str, size=(320, 240), seed: int = 1, **params) -> bytes:
    """A noisy picture (noise compresses to near-random bytes, like a real photo's)."""
    rng = random.Random(seed)
    img = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def _pdf(pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(612, 792)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def _zip(**members: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buf.getvalue()


def _with_jpeg_comment(jpeg: bytes, comment: bytes) -> bytes:
    """The JPEG with a COM segment right after its SOI marker."""
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + jpeg[2:]


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\0\0\0\0" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\0\0\0\x08free"


# ----------------------------------------------------------------------------- sniff

@pytest.mark.parametrize("fmt, name, mime", [
    ("JPEG", "jpeg", "image/jpeg"),
    ("PNG", "png", "image/png"),
    ("WEBP", "webp", "image/webp"),
    ("HEIF", "heic", "image/heic"),
])
def test_real_images_sniff_as_themselves(fmt, name, mime):
    kind = sniff(_photo(fmt, size=(64, 48)))
    assert kind == FileKind(name, mime, "image")


def test_lossless_webp_sniffs_as_webp():
    assert sniff(_photo("WEBP", size=(32, 32), lossless=True)).name == "webp"


def test_pdf_sniffs_as_pdf():
    assert sniff(_pdf()) == FileKind("pdf", "application/pdf", "pdf")


def test_a_jpeg_declared_as_pdf_is_still_a_jpeg():
    # The declared type never reaches sniff: only the bytes count.
    assert sniff(_photo("JPEG")).name == "jpeg"


def test_pdf_magic_must_be_at_offset_zero():
    assert sniff(b"\r\n" + _pdf()) is None
    assert sniff(b"garbage " * 20 + _pdf()) is None


@pytest.mark.parametrize("data", [
    b"",
    b"\xff\xd8",                       # too short to be a JPEG
    b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
    b"BM" + b"\0" * 60,
    b"MZ\x90\x00" + b"\0" * 60,
    b"\x7fELF\x02\x01\x01" + b"\0" * 60,
    b"<!DOCTYPE html><html><body>hola</body></html>",
    b"RIFF\x24\x00\x00\x00WAVEfmt ",   # RIFF, but audio
    b"RIFF\x24\x00\x00\x00WEBPJUNK",   # WEBP without a VP8 chunk
], ids=["empty", "short", "gif", "bmp", "exe", "elf", "html", "wav", "webp-junk"])
def test_other_kinds_are_refused(data):
    assert sniff(data) is None


def test_docx_and_zip_are_refused():
    docx = _zip(**{"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})
    assert sniff(docx) is None


def test_random_bytes_are_refused():
    rng = random.Random(7)
    for _ in range(200):
        data = rng.randbytes(rng.randrange(0, 64))
        if data[:3] != b"\xff\xd8\xff":
            assert sniff(data) is None


def test_real_gif_is_refused():
    assert sniff(_photo("GIF", size=(16, 16))) is None


def test_avif_is_refused():
    # pillow-heif opens the container but has no AV1 decoder, so staff could not view it.
    assert sniff(_photo("AVIF", size=(32, 32))) is None
    assert sniff(_ftyp(b"avif", b"avif", b"mif1", b"miaf")) is None
    assert sniff(_ftyp(b"avis", b"avis", b"msf1", b"heic")) is None


@pytest.mark.parametrize("brands, mime", [
    ((b"heic", b"mif1", b"heic"), "image/heic"),
    ((b"mif1", b"mif1", b"heic"), "image/heic"),
    ((b"heix", b"mif1"), "image/heic"),
    ((b"msf1", b"msf1", b"hevc"), "image/heif"),
])
def test_heif_brands_naming_hevc_are_accepted(brands, mime):
    assert sniff(_ftyp(*brands)) == FileKind("heic", mime, "image")


@pytest.mark.parametrize("data", [
    _ftyp(b"mif1", b"mif1", b"miaf"),                  # codec unknown
    _ftyp(b"isom", b"isom", b"mp41"),                  # an MP4 video
    _ftyp(b"qt  "),                                    # a QuickTime movie
    b"\x00\x00\x00\x0cftypheic",                       # box too small
    b"\x00\x00\x10\x00ftypheic" + b"\0" * 40,          # box larger than the file
    b"\x00\x00\x00\x13ftypheic\0\0\0\0mif1h",          # size not a whole number of brands
])
def test_other_iso_bmff_files_are_refused(data):
    assert sniff(data) is None


# ----------------------------------------------------------------------------- polyglots

@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_real_images_are_not_polyglots(fmt):
    data = _photo(fmt)
    assert polyglot_reason(data, sniff(data)) is None


def test_noisy_photos_with_trailers_are_not_polyglots():
    # Phones append data after the image (Samsung trailers, motion-photo MP4s): that alone is fine,
    # and near-random bytes must not be mistaken for a ZIP.
    rng = random.Random(3)
    for seed in range(8):
        data = _photo("JPEG", size=(400, 300), seed=seed, quality=95) + rng.randbytes(200_000)
        assert polyglot_reason(data, sniff(data)) is None


def test_a_stray_zip_end_marker_is_not_a_zip():
    jpeg = _photo("JPEG")
    data = jpeg + b"PK\x05\x06" + bytes(range(18)) + b"\0" * 10
    assert polyglot_reason(data, sniff(data)) is None


def test_jpeg_carrying_a_pdf_header_is_a_polyglot():
    pdf_start = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    data = _with_jpeg_comment(_photo("JPEG"), pdf_start)
    assert sniff(data).name == "jpeg"
    assert polyglot_reason(data, sniff(data)) == "pdf_in_image"


def test_pdf_header_after_the_first_kilobyte_is_ignored():
    data = _with_jpeg_comment(_photo("JPEG"), b"x" * 2000 + b"%PDF-1.4")
    assert polyglot_reason(data, sniff(data)) is None


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_image_with_a_zip_appended_is_a_polyglot(fmt):
    data = _photo(fmt) + _zip(**{"payload.js": b"WScript.Echo(1)", "a.txt": b"x" * 5000})
    assert polyglot_reason(data, sniff(data)) == "zip_appended"


def test_jar_with_a_comment_appended_to_a_jpeg_is_a_polyglot():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\n")
        zf.comment = b"c" * 300
    data = _photo("JPEG") + buf.getvalue()
    assert polyglot_reason(data, sniff(data)) == "zip_appended"


def _as_zip64(archive: bytes) -> bytes:
    """The archive with a ZIP64 end record, locator and a saturated classic end record."""
    pos = archive.rfind(b"PK\x05\x06")
    _, _, _, _, entries, cd_size, cd_offset, _ = struct.unpack("<4sHHHHIIH", archive[pos:pos + 22])
    record = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries,
                         cd_size, cd_offset)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, pos, 1)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                      0xFFFFFFFF, 0)
    return archive[:pos] + record + locator + end


def test_zip64_appended_is_a_polyglot():
    tail = _as_zip64(_zip(**{"big.bin": b"x" * 100}))
    assert zipfile.ZipFile(io.BytesIO(tail)).read("big.bin") == b"x" * 100  # a valid ZIP64
    data = _photo("JPEG") + tail
    assert polyglot_reason(data, sniff(data)) == "zip_appended"


@pytest.mark.parametrize("marker", [b"<script>alert(1)</script>", b"<HTML><body>",
                                    b"<svg onload=x>", b"<?php system($_GET['c']); ?>"])
def test_markup_in_an_image_header_is_a_polyglot(marker):
    data = _with_jpeg_comment(_photo("JPEG"), marker)
    assert polyglot_reason(data, sniff(data)) == "markup_in_image"


def test_xmp_metadata_is_not_markup():
    xmp = (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
           b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-'
           b'rdf-syntax-ns#"><rdf:Description rdf:about=""/></rdf:RDF></x:xmpmeta>'
           b'<?xpacket end="w"?>')
    data = _with_jpeg_comment(_photo("JPEG"), xmp)
    assert polyglot_reason(data, sniff(data)) is None


def test_png_with_php_in_a_text_chunk_is_a_polyglot():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<?php echo 1; ?>")
    data = _photo("PNG", size=(16, 16), pnginfo=info)
    assert polyglot_reason(data, sniff(data)) == "markup_in_image"


def test_real_pdfs_are_not_polyglots():
    for data in (_pdf(), _pdf(10), _scanned_pdf()):
        assert polyglot_reason(data, sniff(data)) is None


def _scanned_pdf() -> bytes:
    """What a scanner app sends: JPEG pages wrapped in a PDF (near-random stream bytes)."""
    rng = random.Random(11)
    pages = [Image.frombytes("RGB", (500, 700), rng.randbytes(500 * 700 * 3)) for _ in range(3)]
    buf = io.BytesIO()
    pages[0].save(buf, format="PDF", save_all=True, append_images=pages[1:], quality=90)
    return buf.getvalue()


def test_pdf_with_padding_after_eof_is_not_a_polyglot():
    assert polyglot_reason(_pdf() + b"\r\n" + b"\0" * 800, sniff(_pdf())) is None


def test_incrementally_updated_pdf_is_not_a_polyglot():
    base = _pdf()
    writer = PdfWriter(io.BytesIO(base), incremental=True)
    writer.add_metadata({"/Title": "updated"})
    buf = io.BytesIO()
    writer.write(buf)
    data = buf.getvalue()
    assert data.count(b"%%EOF") >= 2
    assert polyglot_reason(data, sniff(data)) is None


def test_pdf_with_a_zip_appended_is_a_polyglot():
    data = _pdf() + _zip(**{"evil.vbs": b"MsgBox 1"})
    assert polyglot_reason(data, sniff(data)) == "zip_appended"


def test_pdf_with_a_payload_after_eof_is_a_polyglot():
    rng = random.Random(5)
    assert polyglot_reason(_pdf() + rng.randbytes(4096), sniff(_pdf())) == "data_after_pdf"
    # Small, but another file's magic number.
    assert polyglot_reason(_pdf() + b"MZ\x90\x00" + b"\0" * 60, sniff(_pdf())) == "data_after_pdf"
    assert polyglot_reason(_pdf() + b"<script>x()</script>", sniff(_pdf())) == "data_after_pdf"


def test_a_payload_ending_in_its_own_eof_marker_still_shows():
    rng = random.Random(6)
    data = _pdf() + rng.randbytes(4096) + b"\n%%EOF\n"
    assert polyglot_reason(data, sniff(data)) == "data_after_pdf"


def test_markup_in_a_pdf_header_is_a_polyglot():
    data = _pdf().replace(b"\n", b"\n<html><script>x()</script>\n", 1)
    assert sniff(data).name == "pdf"
    assert polyglot_reason(data, sniff(data)) == "markup_in_pdf"


def test_a_zip_attached_inside_a_pdf_is_left_to_pdf_inspect():
    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    writer.add_attachment("carta.docx", _zip(**{"word/document.xml": b"<w:document/>" * 50}))
    buf = io.BytesIO()
    writer.write(buf)
    data = buf.getvalue()
    assert polyglot_reason(data, sniff(data)) is None
