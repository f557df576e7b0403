"""Tokens in links: they round-trip, any change or other key breaks them, they show no
personal data to whoever sees the link, and links sent before they were sealed still work."""

import base64
import binascii
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import Signer, URLSafeTimedSerializer

from digest.send.signing import (
    BadLink,
    ExpiredLink,
    confirmation_token,
    read_confirmation_token,
    read_unsubscribe_token,
    unsubscribe_token,
)

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
DAY = timedelta(hours=72)


def test_token_round_trip_and_tampering():
    token = unsubscribe_token("k1", "weekly", "Jo.Smith+news@example.org")
    assert read_unsubscribe_token("k1", token) == ("weekly", "Jo.Smith+news@example.org")
    assert all(c.isalnum() or c in "-_" for c in token)
    assert read_unsubscribe_token("k2", token) is None
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    assert read_unsubscribe_token("k1", flipped) is None
    assert read_unsubscribe_token("k1", token[:-2]) is None
    assert read_unsubscribe_token("k1", "garbage") is None and read_unsubscribe_token("k1", "a.b.c") is None


def readable(token: str) -> str:
    """Everything a person could read out of a token: its text, and its base64 decoded."""
    try:
        decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("latin-1")
    except (binascii.Error, ValueError):
        decoded = ""
    return (token + " " + decoded).lower()


@settings(max_examples=100, deadline=None)
@given(st.from_regex(r"[a-z]{3,10}[._+-]?[a-z0-9]{3,10}@[a-z]{3,10}\.(org|net|co\.uk)", fullmatch=True),
       st.text(alphabet=st.characters(categories=["L"]), min_size=6, max_size=30))
def test_links_carry_no_readable_personal_data(address, name):
    """Neither the address nor the name typed into the form can be read off a link (in a
    log, a proxy, a forwarded mail); only digest, with its secret, reads them back."""
    unsubscribe = unsubscribe_token("secret", "weekly", address)
    confirm = confirmation_token("secret", "weekly", address, name, NOW)
    for token in (unsubscribe, confirm):
        seen = readable(token)
        assert address.lower() not in seen and address.split("@")[0].lower() not in seen
        assert "weekly" not in seen and name.lower() not in seen
    assert read_unsubscribe_token("secret", unsubscribe) == ("weekly", address)
    assert read_confirmation_token("secret", confirm, DAY, NOW)[:3] == ("weekly", address, name)


def test_a_token_opens_only_for_its_own_purpose():
    unsubscribe = unsubscribe_token("k", "weekly", "a@example.org")
    with pytest.raises(BadLink):
        read_confirmation_token("k", unsubscribe, DAY, NOW)
    assert read_unsubscribe_token("k", confirmation_token("k", "weekly", "a@example.org", "", NOW)) is None


def test_confirmation_links_expire_and_say_so():
    token = confirmation_token("k", "weekly", "a@example.org", "Al", NOW)
    assert read_confirmation_token("k", token, DAY, NOW + DAY)[3] == NOW
    with pytest.raises(ExpiredLink, match="expired"):
        read_confirmation_token("k", token, DAY, NOW + DAY + timedelta(seconds=1))
    with pytest.raises(BadLink, match="not valid"):
        read_confirmation_token("other key", token, DAY, NOW)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=40), st.from_regex(r"[a-z0-9][a-z0-9_-]{0,30}", fullmatch=True), st.emails())
def test_links_sent_before_tokens_were_sealed_still_work(key, list_name, address):
    """The transition: an unsubscribe link of the earlier form (base64 of list and address,
    signed by itsdangerous) is read as before, so mail already sent keeps working."""
    payload = base64.urlsafe_b64encode(f"{list_name}\n{address}".encode()).rstrip(b"=")
    old = Signer(key, salt="digest-unsubscribe").sign(payload).decode("ascii")
    assert read_unsubscribe_token(key, old) == (list_name, address)
    assert read_unsubscribe_token(key + "x", old) is None


def test_confirmation_links_of_the_earlier_form_still_work_until_they_expire():
    old = URLSafeTimedSerializer("k", salt="digest-subscribe").dumps(["weekly", "a@example.org", "Al"])
    name, address, person, asked = read_confirmation_token("k", old, DAY, datetime.now(UTC))
    assert (name, address, person) == ("weekly", "a@example.org", "Al")
    with pytest.raises(BadLink):
        read_confirmation_token("other", old, DAY, datetime.now(UTC))
