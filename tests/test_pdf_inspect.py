"""services.pdf_inspect: pages, locks and active content, and never an exception."""
from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from PIL import Image
from pypdf import PdfWriter
from pypdf.actions import JavaScript, PageTrigger
from pypdf.generic import (ArrayObject, DictionaryObject, FloatObject, NameObject,
                           TextStringObject)

from services.pdf_inspect import PdfReport, inspect_pdf


def _write(writer: PdfWriter) -> bytes:
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def _writer(pages: int = 1) -> PdfWriter:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(612, 792)
    return writer


def _pdf(pages: int = 1) -> bytes:
    return _write(_writer(pages))


def _action(kind: str, **entries) -> DictionaryObject:
    action = DictionaryObject({NameObject("/Type"): NameObject("/Action"),
                               NameObject("/S"): NameObject(kind)})
    for key, value in entries.items():
        action[NameObject("/" + key)] = TextStringObject(value)
    return action


def _add_link(writer: PdfWriter, page_index: int, action: DictionaryObject) -> None:
    """A link annotation on the page that runs `action` when clicked."""
    annotation = DictionaryObject({
        NameObject("/Type"): NameObject("/Annot"),
        NameObject("/Subtype"): NameObject("/Link"),
        NameObject("/Rect"): ArrayObject([FloatObject(v) for v in (10, 10, 200, 40)]),
        NameObject("/A"): action,
    })
    page = writer.pages[page_index]
    page[NameObject("/Annots")] = ArrayObject([writer._add_object(annotation)])


def _objstm_pdf(objects: dict[int, bytes]) -> bytes:
    """A PDF 1.5 whose objects (1 is the catalog) all sit in one compressed object stream."""
    numbers = sorted(objects)
    bodies, offsets, position = [], [], 0
    for number in numbers:
        offsets.append(f"{number} {position}")
        bodies.append(objects[number] + b"\n")
        position += len(objects[number]) + 1
    index = " ".join(offsets).encode() + b"\n"
    packed = zlib.compress(index + b"".join(bodies))
    stream_number, xref_number = max(numbers) + 1, max(numbers) + 2
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    stream_offset = len(out)
    out += (f"{stream_number} 0 obj\n<< /Type /ObjStm /N {len(numbers)} /First {len(index)} "
            f"/Filter /FlateDecode /Length {len(packed)} >>\nstream\n").encode()
    out += packed + b"\nendstream\nendobj\n"
    xref_offset = len(out)
    rows = [struct.pack(">BIH", 0, 0, 0xFFFF)]
    for number in range(1, xref_number + 1):
        if number in objects:
            rows.append(struct.pack(">BIH", 2, stream_number, numbers.index(number)))
        elif number == stream_number:
            rows.append(struct.pack(">BIH", 1, stream_offset, 0))
        elif number == xref_number:
            rows.append(struct.pack(">BIH", 1, xref_offset, 0))
        else:
            rows.append(struct.pack(">BIH", 0, 0, 0))
    table = zlib.compress(b"".join(rows))
    out += (f"{xref_number} 0 obj\n<< /Type /XRef /Size {xref_number + 1} /W [1 4 2] "
            f"/Root 1 0 R /Filter /FlateDecode /Length {len(table)} >>\nstream\n").encode()
    out += table + b"\nendstream\nendobj\n"
    out += f"startxref\n{xref_offset}\n%%EOF\n".encode()
    return bytes(out)


_PAGES = {
    2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
}


# ----------------------------------------------------------------------------- plain files

def test_ten_page_pdf_is_fine():
    assert inspect_pdf(_pdf(10)) == PdfReport(pages=10, encrypted=False, active_content=(),
                                              problem=None)


def test_scanned_pdf_is_fine():
    # JPEG pages: megabytes of near-random stream bytes must not look like active content.
    rng = random.Random(2)
    pages = [Image.frombytes("RGB", (700, 900), rng.randbytes(700 * 900 * 3)) for _ in range(3)]
    buf = io.BytesIO()
    pages[0].save(buf, format="PDF", save_all=True, append_images=pages[1:], quality=92)
    assert inspect_pdf(buf.getvalue()) == PdfReport(3, False, (), None)


def test_links_and_a_go_to_open_action_are_not_active_content():
    writer = _writer(2)
    writer.add_uri(0, "https://www.uscis.gov", [10, 10, 200, 40])
    writer.open_destination = writer.pages[1]  # /OpenAction [page /Fit], as Word writes
    report = inspect_pdf(_write(writer))
    assert report.problem is None and report.active_content == ()


def test_too_many_pages():
    report = inspect_pdf(_pdf(5), max_pages=3)
    assert report.pages == 5 and report.problem == "pdf_too_many_pages"
    assert inspect_pdf(_pdf(3), max_pages=3).problem is None


def test_objects_in_a_compressed_object_stream_are_read():
    data = _objstm_pdf({1: b"<< /Type /Catalog /Pages 2 0 R >>", **_PAGES})
    assert inspect_pdf(data) == PdfReport(1, False, (), None)


# ----------------------------------------------------------------------------- active content

def test_document_javascript():
    writer = _writer()
    writer.add_open_action(JavaScript("app.alert('hola');"))  # pypdf 7's add_js
    report = inspect_pdf(_write(writer))
    assert report.active_content == ("javascript",)
    assert report.problem == "pdf_active_content"


def test_open_action_javascript():
    writer = _writer()
    writer._root_object[NameObject("/OpenAction")] = _action("/JavaScript", JS="app.alert(1)")
    report = inspect_pdf(_write(writer))
    assert report.active_content == ("javascript", "open_action")
    assert report.problem == "pdf_active_content"


def test_open_action_launch_chained_after_a_go_to():
    go_to = _action("/GoTo")
    go_to[NameObject("/D")] = ArrayObject([NameObject("/Fit")])
    go_to[NameObject("/Next")] = ArrayObject([_action("/Launch", F="cmd.exe")])
    writer = _writer()
    writer._root_object[NameObject("/OpenAction")] = go_to
    assert inspect_pdf(_write(writer)).active_content == ("launch", "open_action")


def test_launch_annotation():
    writer = _writer(2)
    _add_link(writer, 1, _action("/Launch", F="C:\\Windows\\System32\\cmd.exe"))
    report = inspect_pdf(_write(writer))
    assert report.active_content == ("launch",)
    assert report.problem == "pdf_active_content"


def test_page_additional_actions():
    writer = _writer()
    writer.pages[0].add_action(PageTrigger.OPEN, JavaScript("app.alert(1)"))
    assert inspect_pdf(_write(writer)).active_content == ("additional_actions", "javascript")


def test_catalog_additional_actions():
    writer = _writer()
    writer._root_object[NameObject("/AA")] = DictionaryObject(
        {NameObject("/WC"): _action("/JavaScript", JS="x()")})
    assert "additional_actions" in inspect_pdf(_write(writer)).active_content


def test_submit_form_link():
    writer = _writer()
    _add_link(writer, 0, _action("/SubmitForm", F="https://example.invalid/collect"))
    assert inspect_pdf(_write(writer)).active_content == ("submit_form",)


def test_embedded_file():
    writer = _writer()
    writer.add_attachment("factura.exe", b"MZ\x90\x00")
    report = inspect_pdf(_write(writer))
    assert report.active_content == ("embedded_file",)
    assert report.problem == "pdf_active_content"


def test_xfa_form():
    writer = _writer()
    writer._root_object[NameObject("/AcroForm")] = DictionaryObject({
        NameObject("/Fields"): ArrayObject(),
        NameObject("/XFA"): writer._add_object(DictionaryObject()),
    })
    assert inspect_pdf(_write(writer)).active_content == ("xfa",)


def test_javascript_hidden_in_an_object_stream_is_found():
    data = _objstm_pdf({
        1: b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
        **_PAGES,
        4: b"<< /S /JavaScript /JS (app.alert(1)) >>",
    })
    assert b"/JavaScript" not in data  # invisible to a byte scan
    assert inspect_pdf(data).active_content == ("javascript", "open_action")


def test_hex_escaped_names_are_decoded():
    writer = _writer()
    writer._root_object[NameObject("/OpenAction")] = _action("/JavaScript", JS="x()")
    data = _write(writer).replace(b"/JavaScript", b"/J#61v#61Script")
    assert b"/JavaScript" not in data
    assert "javascript" in inspect_pdf(data).active_content


def test_javascript_where_the_walk_does_not_look_is_caught_by_the_byte_scan():
    # A bookmark's action: outlines are not walked, but the object is plain text in the file.
    writer = _writer()
    writer.add_outline_item(title="Inicio", page_number=0)
    outline = writer._root_object["/Outlines"].get_object()
    outline["/First"].get_object()[NameObject("/A")] = _action("/JavaScript", JS="x()")
    assert inspect_pdf(_write(writer)).active_content == ("javascript",)


def test_active_content_past_the_page_limit_is_caught_by_the_byte_scan():
    writer = _writer(5)
    _add_link(writer, 4, _action("/Launch", F="cmd.exe"))
    report = inspect_pdf(_write(writer), max_pages=3)
    assert report.active_content == ("launch",)
    assert report.problem == "pdf_active_content"  # a security finding outranks the page count


# ----------------------------------------------------------------------------- encryption

@pytest.mark.parametrize("algorithm", [None, "AES-128", "AES-256"])
def test_empty_user_password_is_still_encrypted(algorithm):
    writer = _writer(2)
    writer.encrypt("", owner_password="owner", algorithm=algorithm)
    assert inspect_pdf(_write(writer)) == PdfReport(pages=2, encrypted=True, active_content=(),
                                                    problem="pdf_encrypted")


@pytest.mark.parametrize("algorithm", [None, "AES-256"])
def test_password_protected(algorithm):
    writer = _writer(2)
    writer.encrypt("secreto", algorithm=algorithm)
    report = inspect_pdf(_write(writer))
    assert report.encrypted and report.problem == "pdf_encrypted"


def test_javascript_in_an_encrypted_file_is_reported_as_active_content():
    writer = _writer()
    writer.add_open_action(JavaScript("app.alert(1)"))
    writer.encrypt("")
    report = inspect_pdf(_write(writer))
    assert report.encrypted and report.active_content == ("javascript",)
    assert report.problem == "pdf_active_content"


# ----------------------------------------------------------------------------- broken files

@pytest.mark.parametrize("data", [
    b"",
    b"%PDF-",
    b"%PDF-1.4\n",
    b"%PDF-1.7\n" + bytes(range(256)) * 20,
    b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    b"trailer\n<< /Root 1 0 R >>\n%%EOF",
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 1 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF",
], ids=["empty", "magic", "header", "junk", "no-pages", "self-parent"])
def test_malformed_files_are_unreadable(data):
    assert inspect_pdf(data).problem == "pdf_unreadable"


def test_truncated_file_never_raises():
    data = _pdf(10)
    for cut in range(0, len(data), max(1, len(data) // 40)):
        report = inspect_pdf(data[:cut])
        assert report.problem in ("pdf_unreadable", None)


def test_corrupted_files_never_raise():
    base = _write(_with_everything())
    rng = random.Random(9)
    for _ in range(150):
        data = bytearray(base)
        for _ in range(rng.randrange(1, 12)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        report = inspect_pdf(bytes(data))
        assert isinstance(report, PdfReport)


def _with_everything() -> PdfWriter:
    writer = _writer(4)
    writer.add_open_action(JavaScript("x()"))
    _add_link(writer, 2, _action("/Launch", F="cmd.exe"))
    writer.add_attachment("a.txt", b"hola")
    return writer


def test_cyclic_page_tree_is_unreadable():
    data = _objstm_pdf({
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
    })
    assert inspect_pdf(data).problem == "pdf_unreadable"


def test_cyclic_action_chain_ends():
    data = _objstm_pdf({
        1: b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
        **_PAGES,
        4: b"<< /S /GoTo /D [3 0 R /Fit] /Next [4 0 R 4 0 R] >>",
    })
    assert inspect_pdf(data) == PdfReport(1, False, (), None)
