"""The checklist as a conversation: asks for the next missing item, files what arrives, says what is left.

A file that passed its checks is filed to the item being asked for; with no item in play it goes
to the only open item, or the client picks one from a numbered list. Photos in a row for one item
(pages, front and back) are gathered on that item; a PDF, or both sides of a two-sided item,
completes it, otherwise the client says "listo"/"done". Files that failed their checks get a reply
naming the problem and how to fix it, in the client's language.
"""
from __future__ import annotations

from bot.messages import Choice, Reply
from dialogs.base import NOT_HANDLED, Context, Outcome, reply
from services import documents
from services.checklists import item_instructions, item_name
from services.i18n import N_
from services.models import ChecklistItem, Document, Message
from services.reviews import reason_for_client
from services.templates import load_template
from services.text import strip_accents

DONE = "upload_done"
SKIP = "upload_skip"
MAX_LISTED = 5   # items named in "still missing"; the rest are counted
MAX_CHOICES = 9  # numbered choices that fit a phone screen
DONE_WORDS = frozenset({
    "listo", "lista", "listos", "ya", "ya esta", "ya termine", "termine", "eso es todo", "es todo", "son todas",
    "son todos", "ya son todas", "fin", "completo", "done", "im done", "i'm done", "that's all", "thats all",
    "that is all", "finished", "complete", "all done", "no more", "no hay mas", "ya no hay mas", "nada mas",
})
SKIP_WORDS = frozenset({
    "saltar", "siguiente", "despues", "luego", "no lo tengo", "no la tengo", "no tengo", "lo mando despues",
    "skip", "next", "later", "i don't have it", "i dont have it", "don't have it", "not now",
})

# What the client is told when a file cannot be filed, by the inspection problem.
PROBLEM_TEXT = {
    "empty": N_("The file arrived empty. Please send it again."),
    "unsupported_type": N_("We can only accept photos (JPG, PNG, HEIC) or PDF files. Please send a photo of the document or a PDF."),
    "polyglot": N_("We could not open this file safely. Please take a new photo of the document, or send the PDF again."),
    "undecodable": N_("We could not open this file: it seems damaged or incomplete. Please take a new photo, or send the PDF again."),
    "decompression_bomb": N_("We could not open this file safely. Please take a new photo of the document, or send the PDF again."),
    "too_many_pixels": N_("We could not open this file safely. Please take a new photo of the document, or send the PDF again."),
    "pdf_encrypted": N_("This PDF is protected with a password, so our team cannot open it. Please send a copy without a password, or photos of the pages."),
    "pdf_active_content": N_("This PDF contains scripts or actions we cannot accept. Please save it again as a plain PDF (\"Print to PDF\"), or send photos of the pages."),
    "pdf_unreadable": N_("We could not read this PDF. Please send it again, or send photos of the pages."),
    "pdf_too_many_pages": N_("This PDF has too many pages. Please send only the pages of this document."),
    "too_large": N_("This file is too large. Please send a smaller photo, or a PDF of fewer pages."),
    "infected": N_("Our security check did not accept this file. Please send a new photo of the document instead."),
}
# Photo problems, most important first: what is wrong and the one thing to do about it.
QUALITY_TIP = {
    "too_small": N_("The photo is too small to read. Please move closer so the document fills the photo."),
    "too_dark": N_("The photo is too dark to read. Please take it again with more light, for example near a window."),
    "too_bright": N_("The photo is too bright and the text is washed out. Please take it again without the flash and out of direct sun."),
    "glare": N_("There is a reflection on the photo that hides part of the document. Please take it again without the flash, tilting the document a little to avoid reflections."),
    "blurry": N_("The photo is blurry. Please hold the phone steady, tap the document on the screen to focus, and take it again."),
}


def says_done(text: str) -> bool:
    """"listo", "done", "eso es todo"… (what closes gathering pages for an item)."""
    words = strip_accents(text.lower()).strip(" .!¡¿?👍✅")
    return words in DONE_WORDS


def says_skip(text: str) -> bool:
    words = strip_accents(text.lower()).strip(" .!¡¿?")
    return words in SKIP_WORDS


# -- replies about the files themselves ----------------------------------------------------------
def file_problems(ctx: Context, message: Message, docs: list[Document]) -> list[Reply]:
    """One reply per file that cannot be filed: what went wrong and how to fix it."""
    replies: list[Reply] = []
    for media in message.media or []:
        if media.get("error") in ("unavailable", "refused"):
            replies.append(reply(ctx._("We could not receive one of your files. Please send it again.")))
        elif media.get("error") == "too_large":
            megabytes = int(media.get("cap") or 0) // (1024 * 1024) or 5
            replies.append(reply(ctx._(
                "One file was too large to receive here (the limit is %(mb)s MB). Please send a smaller photo, "
                "or a PDF of fewer pages.", mb=megabytes)))
    for doc in docs:
        problem = (doc.info or {}).get("problem")
        if doc.status == "infected":
            problem = "infected"
        if doc.status == "valid" or not problem:
            continue
        if problem == "poor_quality":
            tips = (doc.info or {}).get("quality") or ["blurry"]
            replies.append(reply(ctx._(QUALITY_TIP.get(tips[0], QUALITY_TIP["blurry"]))))
        else:
            replies.append(reply(ctx._(PROBLEM_TEXT.get(problem, PROBLEM_TEXT["undecodable"]))))
    return replies


# -- the dialog ----------------------------------------------------------------------------------
def receive(ctx: Context) -> Outcome:
    """Files the conversation's unfiled checked uploads to the item in play, or asks which item."""
    matter = ctx.matter
    docs = documents.unfiled_documents(ctx.session, ctx.conversation.id, ctx.conversation.client_id, ctx.now)
    state = dict(ctx.conversation.state or {}) if ctx.conversation.dialog and ctx.conversation.dialog.startswith("upload.") else {}
    if not docs:
        return Outcome([], step=ctx.conversation.dialog, state=state) if state else Outcome([])
    item = _item_in_play(ctx, state)
    if item is None:
        candidates = [i for i in documents.open_items(ctx.session, matter) if documents.can_upload(matter, i)]
        if len(candidates) == 1:
            item = candidates[0]
        elif candidates:
            return _ask_which(ctx, candidates)
        else:
            return _file_without_item(ctx, docs)
    return _file(ctx, docs, item, state)


def collect(ctx: Context) -> Outcome:
    """While gathering pages of an item: "listo" completes it, "saltar" moves on; else not handled."""
    if ctx.choice == DONE or ctx.intent == DONE or says_done(ctx.text):
        item = _item_in_play(ctx, ctx.conversation.state or {})
        lead = [ctx._("Thank you, «%(item)s» is complete.", item=item_name(ctx.t, ctx.matter, item))] if item and documents.item_documents(ctx.session, item) else []
        return ask_next(ctx, lead, skipped=(ctx.conversation.state or {}).get("skipped", []))
    if ctx.choice == SKIP or says_skip(ctx.text):
        state = ctx.conversation.state or {}
        skipped = list(state.get("skipped", [])) + ([state["item"]] if state.get("item") else [])
        return ask_next(ctx, [ctx._("No problem, you can send it later.")], skipped=skipped)
    return NOT_HANDLED


def which(ctx: Context) -> Outcome:
    """Takes the item picked from the numbered list and files the waiting uploads to it."""
    item_id = _choice_item(ctx.choice)
    item = ctx.session.get(ChecklistItem, item_id) if item_id else None
    if item is None or item.matter_id != ctx.conversation.matter_id:
        return NOT_HANDLED
    docs = documents.unfiled_documents(ctx.session, ctx.conversation.id, ctx.conversation.client_id, ctx.now)
    if not docs:
        return ask_for(ctx, item, [])
    return _file(ctx, docs, item, {})


def ask_next(ctx: Context, lead: list[str], skipped: list[int] | None = None) -> Outcome:
    """Asks for the next open item (how to send it, why it is needed), or says the list is complete."""
    matter = ctx.matter
    skipped = list(skipped or [])
    open_items = documents.open_items(ctx.session, matter)
    uploadable = [i for i in open_items if documents.can_upload(matter, i)]
    pending = [i for i in uploadable if i.id not in skipped]
    if not pending:
        if uploadable:  # only skipped ones left
            lead = lead + [_remaining_line(ctx, uploadable)]
            return Outcome([reply("\n".join(lead))])
        lead = lead + [ctx._("You have sent every document on your list. Our team will review them and tell you if anything else is needed.")]
        in_person = [i for i in open_items if not documents.can_upload(matter, i)]
        if in_person:
            lead.append(ctx._("These are handed in person, not by message: %(items)s",
                              items=", ".join(item_name(ctx.t, matter, i) for i in in_person)))
        return Outcome([reply("\n".join(lead))])
    return ask_for(ctx, pending[0], lead, skipped=skipped)


def ask_for(ctx: Context, item: ChecklistItem, lead: list[str], skipped: list[int] | None = None) -> Outcome:
    """Asks for one item: its name, why it is needed, what a good copy looks like."""
    matter = ctx.matter
    lines = list(lead)
    lines.append(ctx._("Please send: %(item)s", item=item_name(ctx.t, matter, item)))
    reason = reason_for_client(ctx.t, item)
    if reason:
        lines.append(ctx._("We need it again because: %(reason)s", reason=reason))
    template_item = _template_item(matter, item)
    if template_item:
        lines.append(ctx._("Why: %(why)s", why=template_item.why[ctx.language]))
    how = item_instructions(ctx.t, matter, item)
    if how:
        lines.append(ctx._("How: %(how)s", how=how))
    if documents.sides(matter, item) == 2:
        lines.append(ctx._("Send both sides: the front and the back."))
    if template_item and template_item.translation_needed == "if_not_english":
        lines.append(ctx._("If it is not in English, we will also need a certified English translation."))
    lines.append(ctx._("Take the photo on a flat surface, with good light and all four corners visible. A PDF also works."))
    state = {"item": item.id, **({"skipped": skipped} if skipped else {})}
    return Outcome([reply("\n".join(lines), Choice(SKIP, ctx._("I'll send it later")))], step="upload.collect", state=state)


# -- helpers -------------------------------------------------------------------------------------
def _file(ctx: Context, docs: list[Document], item: ChecklistItem, state: dict) -> Outcome:
    """Files each upload (refusing duplicates and kinds the item does not take), then says what is left."""
    matter = ctx.matter
    name = item_name(ctx.t, matter, item)
    kinds = documents.accepted_kinds(matter, item)
    lines: list[str] = []
    filed: list[Document] = []
    for doc in docs:
        family = "pdf" if (doc.info or {}).get("kind") == "pdf" else "image"
        if family not in kinds:
            doc.status = "refused"
            doc.info = {**(doc.info or {}), "problem": "kind_not_accepted"}
            lines.append(ctx._("For «%(item)s» we need a PDF file, not a photo.", item=name) if kinds == ("pdf",)
                         else ctx._("For «%(item)s» we need a photo, not a PDF.", item=name))
            continue
        if documents.is_duplicate(ctx.session, item, doc):
            doc.status = "duplicate"
            lines.append(ctx._("We already have this file for «%(item)s»; no need to send it again.", item=name))
            continue
        documents.file_to_item(ctx.session, doc, item, client_id=ctx.conversation.client_id, now=ctx.now)
        filed.append(doc)
    if filed:
        ctx.memo.setdefault("filed_items", set()).add(item.id)
    originals = [d for d in documents.item_documents(ctx.session, item) if d.status == "valid"]
    is_pdf = any((d.info or {}).get("kind") == "pdf" for d in filed)
    complete = bool(filed) and (is_pdf or documents.sides(matter, item) <= len(originals) and documents.sides(matter, item) > 1)
    if filed:
        count = len(originals)
        lines.append(ctx._("Received for «%(item)s» (%(count)s files).", item=name, count=count) if count > 1
                     else ctx._("Received for «%(item)s».", item=name))
    if complete:
        return ask_next(ctx, lines, skipped=state.get("skipped"))
    others = [i for i in documents.open_items(ctx.session, matter) if i.id != item.id and documents.can_upload(matter, i)]
    if others:
        lines.append(_remaining_line(ctx, others))
    lines.append(ctx._("If «%(item)s» has more pages or a back side, send them now. When you are done, reply DONE.", item=name))
    return Outcome([reply("\n".join(lines), Choice(DONE, ctx._("Done")))], step="upload.collect",
                   state={"item": item.id, **({"skipped": state["skipped"]} if state.get("skipped") else {})})


def _remaining_line(ctx: Context, items: list[ChecklistItem]) -> str:
    names = [item_name(ctx.t, ctx.matter, i) for i in items[:MAX_LISTED]]
    listed = ", ".join(names) + (ctx._(" and %(count)s more", count=len(items) - MAX_LISTED) if len(items) > MAX_LISTED else "")
    if len(items) == 1:
        return ctx._("1 document still missing: %(items)s", items=listed)
    return ctx._("%(count)s documents still missing: %(items)s", count=len(items), items=listed)


def _ask_which(ctx: Context, candidates: list[ChecklistItem]) -> Outcome:
    choices = [Choice(f"item:{i.id}", item_name(ctx.t, ctx.matter, i)) for i in candidates[:MAX_CHOICES]]
    return Outcome([reply(ctx._("Thank you. Which document is this?"), *choices)], step="upload.which", state={})


def _file_without_item(ctx: Context, docs: list[Document]) -> Outcome:
    """Nothing is open on the checklist: the file is kept on the matter for staff to place."""
    for doc in docs:
        doc.matter_id, doc.uploader_client_id = ctx.conversation.matter_id, ctx.conversation.client_id
    return Outcome([reply(ctx._("Thank you, we received your file. Your document list has nothing pending, so our team will review where it belongs."))])


def _item_in_play(ctx: Context, state: dict) -> ChecklistItem | None:
    item_id = state.get("item")
    item = ctx.session.get(ChecklistItem, item_id) if item_id else None
    if item is None or item.matter_id != ctx.conversation.matter_id or item.status == "accepted":
        return None
    return item


def _choice_item(choice: str | None) -> int | None:
    if choice and choice.startswith("item:") and choice[5:].isdigit():
        return int(choice[5:])
    return None


def _template_item(matter, item):
    try:
        return load_template(matter.type).item(item.key)
    except (KeyError, ValueError):
        return None
