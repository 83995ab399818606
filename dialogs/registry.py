"""Which function answers an intent, and which function continues a dialog step.

The engine looks names up here; each value is a plain step function `(ctx) -> Outcome`.
"""
from __future__ import annotations

from dialogs import appointments, balance, checklist, handoff, menu, status, upload, verify
from dialogs.base import Outcome, Step


# Intent → (dialog name reported by `puente chat --json`, answer). Matter answers need a verified sender.
ANSWERS: dict[str, tuple[str, Step]] = {
    "status": ("status", status.answer),
    "balance": ("balance", balance.answer),
    "payment": ("payment", balance.pay),
    "checklist": ("checklist", checklist.answer),
    "appointments": ("appointments", appointments.answer),
    "greeting": ("menu", menu.greeting),
    "menu": ("menu", lambda ctx: Outcome([menu.menu_reply(ctx)])),
    "help": ("help", menu.help_),
    "handoff": ("handoff", handoff.start),
    "switch_matter": ("verify", verify.switch_matter),
    "upload": ("upload", upload.receive),
}
MATTER_INTENTS = ("status", "balance", "payment", "checklist", "appointments", "upload")

STEPS: dict[str, tuple[str, Step]] = {
    "verify.ask_dob": ("verify", verify.unverified_turn),
    "verify.choose_client": ("verify", verify.choose_client),
    "verify.choose_matter": ("verify", verify.choose_matter),
    "upload.collect": ("upload", upload.collect),
    "upload.which": ("upload", upload.which),
}
