"""Matter stages and what they mean for the client, in words a client understands.

The texts are catalog msgids (marked with N_); translate them with the conversation's Translator.
"""
from __future__ import annotations

from dataclasses import dataclass

from services.i18n import N_
from services.models import STAGES


@dataclass(frozen=True)
class StageText:
    label: str
    explanation: str
    next_step: str


STAGE_TEXT: dict[str, StageText] = {
    "intake": StageText(
        N_("Getting started"),
        N_("We are opening your case and reviewing your information."),
        N_("We will send you the list of documents we need."),
    ),
    "collecting_evidence": StageText(
        N_("Gathering documents"),
        N_("We are collecting the documents your case needs."),
        N_("Send us the documents that are still missing. Write \"documents\" to see the list."),
    ),
    "attorney_review": StageText(
        N_("Attorney review"),
        N_("Your attorney is reviewing your documents and forms."),
        N_("We will contact you if anything else is needed."),
    ),
    "ready_to_file": StageText(
        N_("Ready to file"),
        N_("Your application is prepared and ready to be sent to USCIS."),
        N_("We will file it and let you know when USCIS receives it."),
    ),
    "filed": StageText(
        N_("Filed with USCIS"),
        N_("We sent your application to USCIS."),
        N_("USCIS will mail a receipt notice (Form I-797C). We will share the receipt number when it arrives."),
    ),
    "receipt_received": StageText(
        N_("Receipt received"),
        N_("USCIS received your application and issued a receipt notice."),
        N_("USCIS will schedule your next appointment; we will tell you as soon as it arrives."),
    ),
    "biometrics_scheduled": StageText(
        N_("Biometrics scheduled"),
        N_("USCIS scheduled your fingerprint and photo appointment (biometrics)."),
        N_("Go to your appointment with your appointment notice and a photo ID."),
    ),
    "interview_scheduled": StageText(
        N_("Interview scheduled"),
        N_("USCIS scheduled an interview for your case."),
        N_("We will contact you to prepare for the interview."),
    ),
    "rfe_received": StageText(
        N_("Request for evidence"),
        N_("USCIS asked for more evidence before deciding your case. This has a firm deadline."),
        N_("Send us the documents we ask for as soon as possible."),
    ),
    "rfe_response_filed": StageText(
        N_("Evidence sent to USCIS"),
        N_("We sent USCIS our response to its request for evidence."),
        N_("USCIS will review the response; we will tell you when there is news."),
    ),
    "approved": StageText(
        N_("Approved"),
        N_("USCIS approved your case."),
        N_("We will tell you about any documents or cards that will arrive by mail."),
    ),
    "denied": StageText(
        N_("Decision: denied"),
        N_("USCIS issued a decision denying the case."),
        N_("Your attorney will contact you to explain your options."),
    ),
    "closed": StageText(
        N_("Closed"),
        N_("This case is closed."),
        N_("If you need anything else, write \"person\" to talk with our team."),
    ),
}

assert set(STAGE_TEXT) == set(STAGES), "every stage needs client-facing text"
