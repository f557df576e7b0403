"""Mail mode's ground: the [mailbox] and [publish] settings (and [bounces], their old name),
when digest runs by mail, the tokens of plus addresses, and how a message that arrives is
routed by the address it was delivered to, never by its From."""

from __future__ import annotations

import email
import email.policy
import logging
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest import config
from digest.errors import ConfigError
from digest.send.signing import (
    MAIL_APPROVE,
    MAIL_CONFIRM,
    MAIL_UNSUBSCRIBE,
    address_token,
    read_address_token,
    read_return_path_token,
    return_path_token,
)
from digest.send.subscribers import check_address
from digest.signals.addresses import Route, automatic, mailto, plus_address, reply_to, route

KEY = "a-long-random-secret-for-the-tests-7Hq2"
BOX = config.Mailbox(address="pickoftheweek@gmail.com")
PLAIN = config.Mailbox(address="pickoftheweek@gmail.com", plus_addresses=False)


def message(headers: dict[str, str], body: str = "hello") -> EmailMessage:
    text = "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n" + body
    parsed = email.message_from_bytes(text.encode(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


# ------------------------------------------------------------------ settings

def test_bounces_is_read_as_mailbox_with_one_deprecation_line(caplog):
    with caplog.at_level(logging.WARNING, logger="digest.config"):
        found = config.from_dict({"bounces": {"maildir": "box", "every_minutes": 7, "soft_limit": 2}})
    assert (found.mailbox.maildir, found.mailbox.poll_minutes, found.mailbox.soft_limit) == ("box", 7, 2)
    assert [r.getMessage() for r in caplog.records] == [
        "config.toml: [bounces] is now called [mailbox] (the same keys; every_minutes is poll_minutes); rename it"]
    with pytest.raises(ConfigError) as both:
        config.from_dict({"bounces": {}, "mailbox": {}})
    assert "[bounces] is the old name of [mailbox]" in both.value.problems[0]


def test_bounces_with_both_names_of_one_setting_is_refused_in_one_line():
    """every_minutes is poll_minutes' old name: both at once would keep one silently."""
    with pytest.raises(ConfigError) as both:
        config.from_dict({"bounces": {"maildir": "box", "every_minutes": 7, "poll_minutes": 3}})
    assert both.value.problems == [
        "config.toml [bounces]: every_minutes and poll_minutes are the same setting; keep poll_minutes"]
    assert config.from_dict({"bounces": {"maildir": "box", "poll_minutes": 3}}).mailbox.poll_minutes == 3


@pytest.mark.parametrize(("bad", "words"), [
    ({"address": "Pick <pick@gmail.com>"}, "not a plain address"),
    ({"address": "pick+x@gmail.com"}, "no +"),
    ({"address": "p" * 31 + "@gmail.com"}, "over 30 characters"),
    ({"poll_minutes": 0}, "poll_minutes"),
])
def test_mailbox_settings_are_checked_where_they_enter(bad, words):
    with pytest.raises(ConfigError) as raised:
        config.from_dict({"mailbox": bad})
    assert raised.value.problems[0].startswith("config.toml [mailbox]") and words in raised.value.problems[0]


def test_publish_settings_are_checked_where_they_enter():
    for bad in ({"mail_to": "Blog <a.b@blogger.com>"}, {"mail_to": "a@x.org, b@x.org"}, {"mail_to": "nobody"},
                {"url": "ftp://blog"}):
        with pytest.raises(ConfigError) as raised:
            config.from_dict({"publish": bad})
        assert raised.value.problems[0].startswith("config.toml [publish]")
    kept = config.from_dict({"publish": {"mail_to": "on.probation.x7@blogger.com", "url": "https://x.blogspot.com/"}})
    assert kept.publish.mail_to == "on.probation.x7@blogger.com" and kept.publish.url == "https://x.blogspot.com"


@pytest.mark.parametrize("bad", ["@blogger.com", "x y@blogger.com", "x@blogger..com", "x@-blogger.com", "x@localhost",
                                 '"x"@blogger.com', "x@[127.0.0.1]", "\u00fcn\u00ef@blogger.com", "x@blogger.com.",
                                 "<x@blogger.com>", "Blog <x@blogger.com>"])
def test_a_post_by_email_address_digest_could_not_mail_is_refused_in_one_line_naming_the_key(bad):
    with pytest.raises(ConfigError) as raised:
        config.from_dict({"publish": {"mail_to": bad}})
    [problem] = raised.value.problems
    assert problem.startswith("config.toml [publish].mail_to: ") and "\n" not in problem
    assert problem.endswith("give the post-by-email address alone, e.g. name.secret@blogger.com")


@settings(max_examples=300, deadline=None)
@given(st.emails() | st.text(max_size=60) | st.text(alphabet="xb@.- \"[]", max_size=20).map(lambda t: t + "@b.com"))
def test_mail_to_loads_only_what_the_subscribers_check_takes(text):
    """Whatever [publish] mail_to loads, a subscriber's address check (send/subscribers.py)
    takes too; what it refuses is one line naming the key."""
    try:
        found = config.from_dict({"publish": {"mail_to": text}}).publish.mail_to
    except ConfigError as error:
        assert all(p.startswith("config.toml [publish].mail_to: ") and "\n" not in p for p in error.problems)
        return
    if found:
        assert check_address(found, smtputf8=False)


@pytest.mark.parametrize(("base_url", "address", "by_mail"), [
    ("http://localhost:8000", "pick@gmail.com", True),
    ("http://192.168.1.20:8000", "pick@gmail.com", True),
    ("https://news.onprobation.org", "pick@gmail.com", False),       # a public address: the server way
    ("http://localhost:8000", "", False),                             # no mailbox: nothing is done by mail
])
def test_mail_mode_is_a_mailbox_without_a_public_address(base_url, address, by_mail):
    found = config.from_dict({"web": {"base_url": base_url}, "mailbox": {"address": address},
                              "tracking": {"clicks": "edition"}})
    assert found.mail_mode is by_mail
    assert found.send_settings().tracking.clicks == ("off" if by_mail else "edition")   # nobody could count them
    assert found.write_settings().track_clicks is not by_mail


# ------------------------------------------------------------------ tokens

@given(st.integers(min_value=1, max_value=36**7 - 1))
@settings(max_examples=60, deadline=None)
def test_an_address_token_reads_back_for_its_purpose_only(number):
    token = address_token(KEY, MAIL_UNSUBSCRIBE, number)
    assert len(token) <= 20 and token == token.lower() and token.replace("-", "").isalnum()
    assert read_address_token(KEY, MAIL_UNSUBSCRIBE, token) == number
    assert read_address_token(KEY, MAIL_UNSUBSCRIBE, token.upper()) == number     # a server folded its case
    assert read_address_token(KEY, MAIL_APPROVE, token) is None
    assert read_address_token(KEY, MAIL_CONFIRM, token) is None
    assert read_address_token("another-instance-secret-Q9x", MAIL_UNSUBSCRIBE, token) is None
    assert read_address_token(KEY, MAIL_UNSUBSCRIBE, token[:-1] + ("a" if token[-1] != "a" else "b")) is None


def test_return_path_tokens_are_unchanged_by_the_move():
    assert return_path_token(KEY, 1234) == address_token(KEY, "digest-return-path", 1234)
    assert read_return_path_token(KEY, return_path_token(KEY, 1234)) == 1234


@given(st.text(max_size=40))
@settings(max_examples=100, deadline=None)
def test_a_strangers_token_reads_as_nothing(text):
    number = read_address_token(KEY, MAIL_UNSUBSCRIBE, text)
    assert number is None or address_token(KEY, MAIL_UNSUBSCRIBE, number) == text.lower()


# ------------------------------------------------------------------ addresses and routing

def test_plus_addresses_and_their_mailto_links():
    token = address_token(KEY, MAIL_UNSUBSCRIBE, 42)
    assert plus_address(BOX, "unsubscribe", token) == f"pickoftheweek+unsubscribe-{token}@gmail.com"
    longest = config.Mailbox(address="p" * 30 + "@gmail.com")       # the longest local part [mailbox] takes
    assert len(plus_address(longest, "unsubscribe", address_token(KEY, MAIL_UNSUBSCRIBE, 36**7 - 1)).split("@")[0]) \
        <= 64
    assert mailto(BOX, "unsubscribe", token) == \
        f"mailto:pickoftheweek+unsubscribe-{token}@gmail.com?subject=unsubscribe"
    assert mailto(PLAIN, "unsubscribe", token) == f"mailto:pickoftheweek@gmail.com?subject=unsubscribe%20{token}"
    assert reply_to(BOX, "confirm", token) == f"pickoftheweek+confirm-{token}@gmail.com"
    assert reply_to(PLAIN, "confirm", token) == "pickoftheweek@gmail.com"


def test_a_message_is_routed_by_the_address_it_was_delivered_to():
    token = address_token(KEY, MAIL_APPROVE, 7)
    delivered = message({"Delivered-To": f"PickOfTheWeek+Approve-{token.upper()}@Gmail.com",
                         "To": "someone.else@example.org", "From": "editor@onprobation.org"})
    assert route(delivered, BOX) == Route("approve", token, "address")
    assert route(message({"To": "Pick <pickoftheweek+subscribe-weekly@gmail.com>"}), BOX) == \
        Route("subscribe", "weekly", "address")
    assert route(message({"Cc": "a@x.org, pickoftheweek+confirm-" + token + "@gmail.com"}), BOX) == \
        Route("confirm", token, "address")


@pytest.mark.parametrize("to", [
    "pickoftheweek@gmail.com",                               # the plain address: bounces, or mail for the editor
    "pickoftheweek+unsubscribe-@gmail.com",                  # no token
    "pickoftheweek+unsubscribe-Robert'); DROP@gmail.com",    # not a token
    "pickoftheweek+delete-all@gmail.com",                    # not a kind
    "someoneelse+unsubscribe-1-abcdefghijkl@gmail.com",      # another mailbox
    "pickoftheweek+unsubscribe-1-abcdefghijkl@evil.example", # another domain
    "pickoftheweek+subscribe-../etc@gmail.com",              # not a list name
])
def test_what_is_not_one_of_our_plus_addresses_is_not_routed(to):
    assert route(message({"To": to, "From": "pickoftheweek+approve-1-abcdefghijkl@gmail.com"}), BOX) is None


def test_without_plus_addressing_the_subject_carries_the_words():
    token = address_token(KEY, MAIL_UNSUBSCRIBE, 9)
    assert route(message({"To": "pickoftheweek@gmail.com", "Subject": f"unsubscribe {token}"}), PLAIN) == \
        Route("unsubscribe", token, "subject")
    assert route(message({"To": "pickoftheweek@gmail.com", "Subject": f"Re: [On Probation] confirm {token}"}),
                 PLAIN) == Route("confirm", token, "subject")
    assert route(message({"To": "pickoftheweek@gmail.com", "Subject": "Re: subscribe weekly"}), PLAIN) == \
        Route("subscribe", "weekly", "subject")
    assert route(message({"To": "pickoftheweek@gmail.com", "Subject": "please unsubscribe me"}), PLAIN) is None
    assert route(message({"Subject": f"unsubscribe {token}"}), config.Mailbox()) is None    # no mailbox address


@given(st.dictionaries(st.sampled_from(["To", "Cc", "Delivered-To", "Subject", "From", "X-Original-To", "List-Id",
                                        "Return-Path", "Auto-Submitted", "Precedence"]),
                       st.text(max_size=300), max_size=6))
@settings(max_examples=150, deadline=None)
def test_a_strangers_headers_route_to_one_of_the_kinds_or_nowhere(headers):
    try:
        parsed = message({name: value.replace("\r", " ").replace("\n", " ") for name, value in headers.items()})
    except Exception:  # noqa: BLE001 - what the email package itself cannot take apart is not ours to route
        return
    found = route(parsed, BOX)
    assert isinstance(automatic(parsed), str)                            # never an exception
    assert found is None or (found.kind in ("subscribe", "unsubscribe", "confirm", "approve") and found.value)


@pytest.mark.parametrize(("headers", "why"), [
    ({"Auto-Submitted": "auto-replied"}, "Auto-Submitted"),
    ({"Precedence": "bulk"}, "Precedence"),
    ({"Precedence": "list"}, "Precedence"),
    ({"List-Id": "<news.example.org>"}, "List-Id"),
    ({"Return-Path": "<>"}, "Return-Path"),
    ({"X-Autoreply": "yes"}, "X-Autoreply"),
    ({"From": "MAILER-DAEMON@mx.example.org"}, "mailer-daemon"),
])
def test_automatic_mail_is_told_apart(headers, why):
    assert why.lower() in automatic(message({"From": "reader@example.org", **headers})).lower()


def test_a_persons_mail_is_not_automatic():
    assert automatic(message({"From": "Reader <reader@example.org>", "Auto-Submitted": "no",
                              "Return-Path": "<reader@example.org>"})) == ""


@pytest.mark.parametrize("headers", [
    {"Precedence": "bulk "}, {"Precedence": "Bulk;"}, {"Precedence": "\tlist"},
    {"Return-Path": "< >"}, {"Return-Path": "<>  (null)"}, {"Return-Path": "<MAILER-DAEMON>"},
    {"X-Loop": "helpdesk@example.org"}, {"Subject": "[Auto-Reply] Re: subscribe"}, {"Subject": "Abwesend: subscribe"},
    {"Auto-Submitted": "auto-replied (vacation)"},
])
def test_robots_are_told_apart_however_they_spell_it(headers):
    assert automatic(message({"From": "reader@example.org", **headers})) != ""


def test_a_person_saying_auto_submitted_no_with_a_comment_is_a_person():
    assert automatic(message({"From": "reader@example.org", "Auto-Submitted": "no (manual)",
                              "Subject": "subscribe", "Return-Path": "<reader@example.org>"})) == ""
