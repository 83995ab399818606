"""Email to staff (a new handoff assigned to them), when SMTP is configured.

The message names no client and carries no matter facts: only that someone is waiting and a link
to the console, where access rules apply. SMTP_URL is `smtp://user:password@host:587` (STARTTLS)
or `smtps://…:465`; SMTP_FROM is the sender address.
"""
from __future__ import annotations

import smtplib
from email.message import EmailMessage
from urllib.parse import unquote, urlparse

from services.i18n import N_, Translator

SUBJECT = N_("A client is waiting for you in Puente")
BODY = N_("A conversation was handed to you and is waiting for a reply. Open it in the console: %(link)s "
          "(For privacy, this email does not say who it is.)")


def send_handoff_ping(smtp_url: str, sender: str, to: str, language: str, link: str, timeout: float = 10) -> None:
    """Sends the ping; raises on SMTP errors (the job is retried by the queue's caller)."""
    t = Translator.for_language(language)
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = t.gettext(SUBJECT), sender, to
    message.set_content(t.gettext(BODY, link=link))
    url = urlparse(smtp_url)
    secure = url.scheme == "smtps"
    client_class = smtplib.SMTP_SSL if secure else smtplib.SMTP
    with client_class(url.hostname, url.port or (465 if secure else 25), timeout=timeout) as client:
        if not secure and client.has_extn("starttls"):
            client.starttls()
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        client.send_message(message)
