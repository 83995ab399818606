"""The fake Twilio REST API, driven by the official twilio client (and plain requests)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from werkzeug.datastructures import MultiDict

from tests.fakes.twilio import FakeTwilio, inbound_form, num_segments, sign

SID = "AC" + "5" * 32
TOKEN = "s3cret-token"
OURS = "+15005550006"
ANA = "+5215512345678"


@pytest.fixture
def fake():
    with FakeTwilio(account_sid=SID, auth_token=TOKEN) as f:
        yield f


def client_for(fake, sid=SID, token=TOKEN, **kw) -> Client:
    client = Client(sid, token, **kw)
    client.api.base_url = fake.url
    return client


@pytest.fixture
def client(fake):
    return client_for(fake)


def send(client, **kw):
    args = {"to": ANA, "from_": OURS, "body": "Hola"}
    args.update(kw)
    return client.messages.create(**args)


# ------------------------------------------------------------------ create


def test_create_is_recorded_and_answered_like_twilio(fake, client):
    msg = client.messages.create(to=ANA, from_=OURS, body="Hola, ¿cómo estás?",
                                 status_callback="https://puente.example/twilio/status",
                                 media_url=["https://puente.example/a.png",
                                            "https://puente.example/b.png"])
    assert msg.sid.startswith("MM") and len(msg.sid) == 34
    assert msg.status == "queued" and msg.direction == "outbound-api"
    assert msg.to == ANA and msg.from_ == OURS and msg.body == "Hola, ¿cómo estás?"
    assert msg.account_sid == SID and msg.api_version == "2010-04-01"
    assert msg.num_media == "2" and msg.num_segments == "1"
    assert msg.price is None and msg.error_code is None
    assert isinstance(msg.date_created, datetime)  # parsed from RFC 2822
    assert msg.uri == f"/2010-04-01/Accounts/{SID}/Messages/{msg.sid}.json"
    [rec] = fake.sent
    assert rec["sid"] == msg.sid and rec["to"] == ANA and rec["from_"] == OURS
    assert rec["media_urls"] == ["https://puente.example/a.png", "https://puente.example/b.png"]
    assert rec["status_callback"] == "https://puente.example/twilio/status"
    assert rec["content_sid"] is None and rec["content_variables"] is None


def test_whatsapp_template_and_raw_json(fake, client):
    msg = client.messages.create(to="whatsapp:" + ANA, from_="whatsapp:" + OURS,
                                 content_sid="HX" + "a" * 32,
                                 content_variables=json.dumps({"1": "Ana"}))
    assert msg.sid.startswith("SM")
    rec = fake.sent[-1]
    assert rec["content_sid"] == "HX" + "a" * 32
    assert json.loads(rec["content_variables"]) == {"1": "Ana"}
    raw = fake.message(msg.sid)
    assert raw["date_created"].endswith("+0000") and raw["date_sent"] is None
    assert raw["subresource_uris"]["media"].endswith(f"/Messages/{msg.sid}/Media.json")


def test_segments():
    assert num_segments("a" * 160) == 1 and num_segments("a" * 161) == 2
    assert num_segments("ñ" * 160) == 1  # ñ is GSM-7
    assert num_segments("á" * 70) == 1 and num_segments("á" * 71) == 2  # á is not
    assert num_segments("😀" * 35) == 1 and num_segments("😀" * 36) == 2


def test_bad_credentials_answer_401(fake):
    with pytest.raises(TwilioRestException) as err:
        send(client_for(fake, token="wrong"))
    assert err.value.status == 401 and err.value.code == 20003
    r = requests.post(f"{fake.url}/2010-04-01/Accounts/{SID}/Messages.json",
                      data={"To": ANA, "From": OURS, "Body": "x"})
    assert r.status_code == 401
    assert r.json() == {"code": 20003, "message": "Authenticate",
                        "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401,
                        "detail": "Your AccountSid or AuthToken was incorrect."}
    assert fake.sent == []


def test_wrong_account_in_path_answers_404(fake, client):
    with pytest.raises(TwilioRestException) as err:
        client.api.v2010.accounts("AC" + "6" * 32).messages.create(to=ANA, from_=OURS, body="x")
    assert err.value.status == 404 and err.value.code == 20404
    assert fake.sent == []


def test_missing_parameters_are_rejected(fake, client):
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to=ANA, from_=OURS)
    assert (err.value.status, err.value.code) == (400, 21619)


# ------------------------------------------------------------------ scripted failures


@pytest.mark.parametrize("kind,status,code,recorded", [
    ("429", 429, 20429, False),
    ("500", 500, 20500, False),
    ("500_after_accept", 500, 20500, True),
    ("21610", 400, 21610, False),
    ("63016", 400, 63016, False),
    ("21211", 400, 21211, False),
])
def test_scripted_failures(fake, client, kind, status, code, recorded):
    fake.fail_next(kind)
    with pytest.raises(TwilioRestException) as err:
        send(client)
    assert err.value.status == status and err.value.code == code
    assert len(fake.sent) == (1 if recorded else 0)
    body = json.loads(client.http_client._test_only_last_response.text)
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert body["status"] == status
    assert send(client).sid  # only the next one failed
    assert len(fake.sent) == (2 if recorded else 1)


def test_429_carries_retry_after_and_times(fake):
    fake.fail_next("429", times=2)
    url = f"{fake.url}/2010-04-01/Accounts/{SID}/Messages.json"
    form = {"To": ANA, "From": OURS, "Body": "x"}
    for _ in range(2):
        r = requests.post(url, data=form, auth=(SID, TOKEN))
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        assert r.json()["code"] == 20429
    assert requests.post(url, data=form, auth=(SID, TOKEN)).status_code == 201
    assert [r["status"] for r in fake.requests] == [429, 429, 201]


def test_21211_names_the_number(fake, client):
    fake.fail_next("21211")
    with pytest.raises(TwilioRestException) as err:
        send(client, to="+1555")
    assert "+1555" in err.value.msg


def test_unknown_failure_kind_is_refused(fake):
    with pytest.raises(ValueError):
        fake.fail_next("418")


def test_timeout_is_ambiguous_and_reconcilable(fake):
    fake.timeout_seconds = 3
    slow = client_for(fake, http_client=TwilioHttpClient(timeout=0.5))
    fake.fail_next("timeout")
    with pytest.raises(requests.exceptions.Timeout):
        send(slow, body="¿llegó?")
    [rec] = fake.sent  # Twilio did accept it
    assert rec["outcome"] == "timeout"
    found = client_for(fake).messages.list(to=ANA, date_sent_after=datetime.now(timezone.utc)
                                           - timedelta(minutes=5))
    assert [m.sid for m in found] == [rec["sid"]]


# ------------------------------------------------------------------ fetch & list


def test_fetch_and_status(fake, client):
    sid = send(client).sid
    assert client.messages(sid).fetch().status == "queued"
    fake.set_status(sid, "delivered")
    fetched = client.messages(sid).fetch()
    assert fetched.status == "delivered" and fetched.date_sent is not None
    with pytest.raises(TwilioRestException) as err:
        client.messages("SM" + "0" * 32).fetch()
    assert err.value.status == 404 and err.value.code == 20404


def test_list_filters_and_pages(fake, client):
    sids = [send(client, body=f"n{i}").sid for i in range(5)]
    send(client, to="+15551230000")
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    listed = client.messages.list(to=ANA, date_sent_after=since, page_size=2)
    assert [m.sid for m in listed] == list(reversed(sids))  # newest first, across 3 pages
    assert client.messages.list(to=ANA, date_sent_after=since + timedelta(days=1)) == []
    today = datetime.now(timezone.utc).date().isoformat()
    r = requests.get(f"{fake.url}/2010-04-01/Accounts/{SID}/Messages.json?To={ANA}"
                     f"&DateSent>={today}&PageSize=2".replace("+", "%2B"), auth=(SID, TOKEN))
    page = r.json()
    assert r.status_code == 200 and len(page["messages"]) == 2
    assert page["page"] == 0 and page["page_size"] == 2 and page["start"] == 0
    assert page["end"] == 1 and page["previous_page_uri"] is None
    assert page["next_page_uri"].startswith(f"/2010-04-01/Accounts/{SID}/Messages.json?")
    assert "Page=1" in page["next_page_uri"] and page["first_page_uri"] and page["uri"]


# ------------------------------------------------------------------ media


def test_media_needs_auth_redirects_and_cdn_refuses_credentials(fake):
    msid = "MM" + "1" * 32
    url = fake.add_media(msid, b"\xff\xd8jpeg-bytes", "image/jpeg")
    assert url.startswith(f"{fake.url}/2010-04-01/Accounts/{SID}/Messages/{msid}/Media/ME")

    r = requests.get(url, allow_redirects=False)
    assert r.status_code == 401 and r.json()["code"] == 20003

    r = requests.get(url, auth=(SID, TOKEN), allow_redirects=False)
    assert r.status_code == 302
    cdn = r.headers["Location"]
    assert cdn.startswith(f"{fake.url}/cdn/")

    r = requests.get(cdn, headers={"Authorization": "Basic " + base64.b64encode(
        f"{SID}:{TOKEN}".encode()).decode()})
    assert r.status_code == 400 and b"Only one auth mechanism" in r.content

    r = requests.get(cdn)
    assert r.status_code == 200 and r.content == b"\xff\xd8jpeg-bytes"
    assert r.headers["Content-Type"] == "image/jpeg"

    # a client that lets its HTTP library follow the (same-origin) redirect leaks the credentials
    assert requests.get(url, auth=(SID, TOKEN)).status_code == 400

    assert [(m["kind"], m["had_auth"], m["status"]) for m in fake.media_requests] == [
        ("api", False, 401), ("api", True, 302), ("cdn", True, 400), ("cdn", False, 200),
        ("api", True, 302), ("cdn", True, 400)]


def test_media_brief_404_before_ready(fake):
    url = fake.add_media("MM" + "2" * 32, b"ogg", "audio/ogg")
    fake.media_404_first = 2
    codes = [requests.get(url, auth=(SID, TOKEN), allow_redirects=False).status_code
             for _ in range(3)]
    assert codes == [404, 404, 302]


def test_media_metadata_and_delete(fake, client):
    msid = "MM" + "3" * 32
    url = fake.add_media(msid, b"png", "image/png")
    media_sid = url.rsplit("/", 1)[1]
    meta = client.messages(msid).media(media_sid).fetch()
    assert meta.content_type == "image/png" and meta.parent_sid == msid
    assert [m.sid for m in client.messages(msid).media.list()] == [media_sid]
    assert client.messages(msid).media(media_sid).delete() is True
    assert fake.deleted_media == [{"message_sid": msid, "media_sid": media_sid,
                                   "path": f"/2010-04-01/Accounts/{SID}/Messages/{msid}"
                                           f"/Media/{media_sid}.json"}]
    assert requests.get(url, auth=(SID, TOKEN), allow_redirects=False).status_code == 404
    with pytest.raises(TwilioRestException) as err:
        client.messages(msid).media(media_sid).delete()
    assert err.value.status == 404


# ------------------------------------------------------------------ webhook helpers


def _reference_signature(token: str, url: str, pairs) -> str:
    """Twilio's documented algorithm, written out independently."""
    s = url
    for key in sorted({k for k, _ in pairs}):
        for value in sorted(v for k, v in pairs if k == key):
            s += key + value
    return base64.b64encode(hmac.new(token.encode(), s.encode(), hashlib.sha1).digest()).decode()


@pytest.mark.parametrize("pairs", [
    [("Body", "hola"), ("MediaUrl", "https://b.example/2"), ("MediaUrl", "https://a.example/1"),
     ("From", "+15551112222")],
    [("Body", ""), ("From", "+15551112222"), ("NumMedia", "0")],
    [("Body", "¡Hola! 😀🇲🇽 ñandú"), ("ProfileName", "José 🌮")],
])
def test_sign_agrees_with_request_validator(pairs):
    url = "https://puente.example/twilio/sms?x=1"
    signature = sign(TOKEN, url, pairs)
    validator = RequestValidator(TOKEN)
    assert validator.validate(url, MultiDict(pairs), signature)
    assert signature == _reference_signature(TOKEN, url, pairs)
    assert not RequestValidator("other").validate(url, MultiDict(pairs), signature)
    tampered = pairs[:-1] + [(pairs[-1][0], pairs[-1][1] + "x")]
    assert not validator.validate(url, MultiDict(tampered), signature)


def test_sign_accepts_a_dict_and_the_full_inbound_form(fake):
    url = "https://puente.example/twilio/sms"
    assert sign(TOKEN, url, {"Body": "hi", "To": OURS}) == sign(TOKEN, url, [("To", OURS),
                                                                              ("Body", "hi")])
    form = fake.inbound_form(ANA, OURS, "Hola", media=[(fake.add_media("MM" + "4" * 32, b"x",
                                                                       "image/png"), "image/png")])
    assert RequestValidator(TOKEN).validate(url, MultiDict(form), fake.sign(url, form))


def test_inbound_sms_form(fake):
    url = fake.add_media("MM" + "7" * 32, b"img", "image/jpeg")
    form = fake.inbound_form(ANA, OURS, "", media=[(url, "image/jpeg")])
    d = dict(form)
    assert d["MessageSid"] == d["SmsSid"] == d["SmsMessageSid"] == "MM" + "7" * 32
    assert d["AccountSid"] == SID and d["ApiVersion"] == "2010-04-01"
    assert d["From"] == ANA and d["To"] == OURS and d["Body"] == ""
    assert d["NumMedia"] == "1" and d["MediaUrl0"] == url
    assert d["MediaContentType0"] == "image/jpeg"
    assert d["FromCountry"] == "MX" and d["ToCountry"] == "US" and d["NumSegments"] == "1"
    assert "MessagingServiceSid" not in d and "WaId" not in d


def test_inbound_whatsapp_form_and_extras():
    form = inbound_form(ANA, OURS, "hola", whatsapp=True, ProfileName="Ana", Latitude="19.4",
                        ReferralNumMedia=None)
    d = dict(form)
    assert d["From"] == "whatsapp:" + ANA and d["To"] == "whatsapp:" + OURS
    assert d["WaId"] == ANA[1:] and d["ProfileName"] == "Ana" and d["MessageType"] == "text"
    assert d["MessageSid"].startswith("SM") and d["NumMedia"] == "0"
    assert d["Latitude"] == "19.4" and "ReferralNumMedia" not in d
    assert len(form) == len(d)  # no key appears twice


def test_stop_is_prompt_even_with_a_held_request_and_closes_the_port():
    fake = FakeTwilio(account_sid=SID, auth_token=TOKEN).start()
    port, url = fake.port, f"{fake.url}/2010-04-01/Accounts/{SID}/Messages.json"
    fake.timeout_seconds = 30
    fake.fail_next("timeout")
    held = threading.Thread(target=lambda: requests.post(
        url, data={"To": ANA, "From": OURS, "Body": "x"}, auth=(SID, TOKEN), timeout=40))
    held.start()
    deadline = time.monotonic() + 5
    while not fake.sent and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    fake.stop()
    held.join(timeout=5)
    assert time.monotonic() - started < 3 and not held.is_alive()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_concurrent_sends_are_all_recorded(fake):
    def one(i):
        send(client_for(fake), body=f"m{i}")
    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(r["body"] for r in fake.sent) == sorted(f"m{i}" for i in range(20))
    assert len({r["sid"] for r in fake.sent}) == 20
