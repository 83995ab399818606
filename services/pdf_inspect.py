"""PDF checks before staff open a client's file: readable, not locked, no active content.

pypdf walks a bounded set of places where actions live (the catalog's /Names, /OpenAction,
/AA and /AcroForm, then each page's /AA and annotations, up to `max_pages`). A raw-byte scan
for the longer action names backs it up: it sees uncompressed objects the walk does not visit
(bookmarks, form fields, pages past the limit, files pypdf cannot parse), while the walk sees
objects packed in compressed object streams that raw bytes hide. Short names such as /JS and
/AA are left to the walk: three random bytes in a compressed stream match them too often.

A problem is reported in this order of precedence: unreadable, active content (a security
finding, kept even when the file is also locked), encrypted, too many pages.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass

from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject

_MAX_ANNOTATIONS_PER_PAGE = 500
_MAX_ACTION_CHAIN = 20  # /Next links followed per action

# Action types that run code, start programs or send data; /GoTo and /URI links are ordinary.
_ACTION_KINDS = {
    "/JavaScript": "javascript",
    "/Launch": "launch",
    "/SubmitForm": "submit_form",
    "/ImportData": "import_data",
}
# An /OpenAction that only turns to a page is what word processors write; anything else fires
# on opening without a click.
_HARMLESS_OPEN_ACTIONS = frozenset({"/GoTo"})

_RAW_NAMES = {
    b"JavaScript": "javascript",
    b"Launch": "launch",
    b"EmbeddedFile": "embedded_file",
    b"EmbeddedFiles": "embedded_file",
    b"XFA": "xfa",
}
_RAW_PLAIN = re.compile(rb"/(JavaScript|Launch|EmbeddedFiles?|XFA)(?=[\s/<>\[\]()%{}]|$)")
# Names may spell letters as #xx ("/J#61vaScript"), a known way to slip past byte scanners.
_NAME_CHAR = rb"(?:[A-Za-z]|#[0-9A-Fa-f]{2})"
_RAW_ESCAPED = re.compile(rb"/" + _NAME_CHAR + rb"{0,12}#[0-9A-Fa-f]{2}" + _NAME_CHAR + rb"{0,12}")
_HEX_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class PdfReport:
    pages: int
    encrypted: bool
    active_content: tuple[str, ...]  # sorted codes, e.g. ("javascript", "open_action")
    # "pdf_unreadable" | "pdf_active_content" | "pdf_encrypted" | "pdf_too_many_pages" | None
    problem: str | None


def inspect_pdf(data: bytes, *, max_pages: int = 200) -> PdfReport:
    """Reads the PDF with pypdf and reports pages, encryption, active content and the problem."""
    found: set[str] = set(_raw_scan(data))
    encrypted = False
    pages = 0
    readable = True
    try:
        # pypdf tries the empty user password itself, so a merely owner-locked file is walked;
        # with a real password every read below raises and the file is reported as locked.
        reader = PdfReader(io.BytesIO(data), strict=False)
        encrypted = reader.is_encrypted
        pages = len(reader.pages)
        _walk(reader, max_pages, found)
    except Exception:  # pypdf raises many kinds on malformed files; none may escape
        # A structure we could not walk is one we could not vouch for.
        readable = encrypted
    if not readable or (not encrypted and pages == 0):
        problem = "pdf_unreadable"
    elif found:
        problem = "pdf_active_content"
    elif encrypted:
        problem = "pdf_encrypted"
    elif pages > max_pages:
        problem = "pdf_too_many_pages"
    else:
        problem = None
    return PdfReport(pages, encrypted, tuple(sorted(found)), problem)


def _raw_scan(data: bytes) -> set[str]:
    found = {_RAW_NAMES[m.group(1)] for m in _RAW_PLAIN.finditer(data)}
    for match in _RAW_ESCAPED.finditer(data):
        name = _HEX_ESCAPE.sub(lambda h: bytes([int(h.group(1), 16)]), match.group(0)[1:])
        if name in _RAW_NAMES:
            found.add(_RAW_NAMES[name])
    return found


def _walk(reader: PdfReader, max_pages: int, found: set[str]) -> None:
    """Adds the active content found in the catalog and the first `max_pages` pages."""
    catalog = _dict(reader.trailer.get("/Root"))
    if catalog is None:
        return
    names = _dict(catalog.get("/Names"))
    if names is not None:
        if _dict(names.get("/JavaScript")) is not None:
            found.add("javascript")
        if _dict(names.get("/EmbeddedFiles")) is not None:
            found.add("embedded_file")
    open_action = _dict(catalog.get("/OpenAction"))
    if open_action is not None:
        kinds = _action_kinds(open_action)
        if kinds or open_action.get("/S") not in _HARMLESS_OPEN_ACTIONS:
            found |= kinds | {"open_action"}
    if _dict(catalog.get("/AA")):
        found.add("additional_actions")
    form = _dict(catalog.get("/AcroForm"))
    if form is not None and form.get("/XFA") is not None:
        found.add("xfa")
    for index, page in enumerate(reader.pages):
        if index >= max_pages:
            break
        found |= _page_kinds(page)


def _page_kinds(page: DictionaryObject) -> set[str]:
    found: set[str] = set()
    if _dict(page.get("/AA")):
        found.add("additional_actions")
    annotations = page.get("/Annots")
    annotations = annotations.get_object() if annotations is not None else None
    if not isinstance(annotations, ArrayObject):
        return found
    for annotation in annotations[:_MAX_ANNOTATIONS_PER_PAGE]:
        annotation = _dict(annotation)
        if annotation is None:
            continue
        action = _dict(annotation.get("/A"))
        if action is not None:
            found |= _action_kinds(action)
        if _dict(annotation.get("/AA")):
            found.add("additional_actions")
        if annotation.get("/Subtype") == "/FileAttachment":
            found.add("embedded_file")
    return found


def _action_kinds(action: DictionaryObject) -> set[str]:
    """The risky kinds in an action and the actions chained after it by /Next."""
    found: set[str] = set()
    queue = [action]
    seen = 0
    while queue and seen < _MAX_ACTION_CHAIN:
        current = queue.pop()
        seen += 1
        kind = _ACTION_KINDS.get(current.get("/S"))
        if kind:
            found.add(kind)
        following = current.get("/Next")
        following = following.get_object() if following is not None else None
        if isinstance(following, ArrayObject):
            queue.extend(d for d in map(_dict, following[:_MAX_ACTION_CHAIN]) if d is not None)
        elif (d := _dict(following)) is not None:
            queue.append(d)
    return found


def _dict(value: object) -> DictionaryObject | None:
    """The dictionary behind a (possibly indirect) value, or None."""
    if value is None:
        return None
    value = value.get_object() if hasattr(value, "get_object") else value
    return value if isinstance(value, DictionaryObject) else None
