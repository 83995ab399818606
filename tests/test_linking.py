"""Linking a Telegram chat to a client: one-time deep-link tokens and shared phone contacts."""
from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from services.linking import issue_token
from services.models import Client
from tests.conftest import Chat
from web.cli import cli


def _token(demo, clock, external_id="CL-1001"):
    with demo.Session.begin() as s:
        client = s.scalar(select(Client).where(Client.external_id == external_id))
        return issue_token(s, client, "telegram", "staff:1", clock())


def _maria_id(demo):
    with demo.Session() as s:
        return s.scalar(select(Client.external_id).where(Client.first_name == "María"))


def test_a_link_token_links_the_chat_and_verification_still_applies(demo, clock):
    token = _token(demo, clock, _maria_id(demo))
    chat = Chat(demo, address="777001", channel="telegram")
    linked = chat.say("/start", link=f"start:{token}")
    assert "vinculada" in linked.text and "fecha de nacimiento" in linked.text and "$" not in linked.text
    assert "María" in chat.say("21/03/1988").text
    assert "$1,020.00" in chat.say("cuánto debo").text


def test_a_token_works_once_and_only_for_fifteen_minutes(demo, clock):
    token = _token(demo, clock, _maria_id(demo))
    Chat(demo, address="777001", channel="telegram").say("/start", link=f"start:{token}")
    second = Chat(demo, address="777002", channel="telegram")
    assert "ya no es válido" in second.say("/start", link=f"start:{token}").text
    second.say("hola")
    assert "María" not in second.say("21/03/1988").text  # not linked: the date matches nobody here

    late = _token(demo, clock, _maria_id(demo))
    clock.advance(minutes=16)
    assert "ya no es válido" in Chat(demo, address="777003", channel="telegram").say("/start", link=f"start:{late}").text


def test_sharing_a_known_or_unknown_phone_gets_the_same_reply(demo):
    family = Chat(demo, address="777010", channel="telegram")
    stranger = Chat(demo, address="777011", channel="telegram")
    assert family.say(link="contact:+15555550101").replies == stranger.say(link="contact:+15555550999").replies
    assert "Daniel" in family.say("02/11/2006").text  # the shared family phone: the birth date picks the person
    assert "Daniel" not in stranger.say("02/11/2006").text


def test_someone_elses_contact_card_is_refused(demo):
    turn = Chat(demo, address="777020", channel="telegram").say(link="contact:other")
    assert "propio número" in turn.text


def test_staff_hand_out_a_link_from_the_command_line(demo, settings):
    env = {"DATABASE_URL": settings.database_url, "REDIS_URL": ""}
    result = CliRunner().invoke(cli, ["telegram", "link", _maria_id(demo), "--bot-username", "@PuenteDemoBot"], env=env)
    assert result.exit_code == 0, result.output
    link = result.output.splitlines()[0]
    assert link.startswith("https://t.me/PuenteDemoBot?start=") and len(link.split("=", 1)[1]) >= 22
    token = link.split("=", 1)[1]
    assert "vinculada" in Chat(demo, address="777030", channel="telegram").say("/start", link=f"start:{token}").text


def test_a_forged_button_press_cannot_link_someone_elses_phone(demo):
    attacker = Chat(demo, address="777040", channel="telegram")
    attacker.say(choice="contact:+15555550101")  # button data is whatever a modified client sends
    attacker.say(choice="start:whatever")
    assert "María" not in attacker.say("21/03/1988").text


def test_stop_on_sms_from_a_verified_client_also_stops_their_telegram_chat(demo, clock):
    token = _token(demo, clock, _maria_id(demo))
    telegram = Chat(demo, address="777050", channel="telegram")
    telegram.say("/start", link=f"start:{token}")
    sms = Chat(demo, address="+15555550101")
    sms.say("hola")
    sms.say("21/03/1988")
    assert len(sms.say("ya no me manden mensajes").replies) == 1
    assert telegram.say("hola").replies == []  # the same person, another channel: silent too
    assert len(telegram.say("START").replies) == 1
