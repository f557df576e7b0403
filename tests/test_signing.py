"""Signed unsubscribe tokens: they round-trip, and any change or other key breaks them."""

from digest.signing import read_unsubscribe_token, unsubscribe_token


def test_token_round_trip_and_tampering():
    token = unsubscribe_token("k1", "weekly", "Jo.Smith+news@example.org")
    assert read_unsubscribe_token("k1", token) == ("weekly", "Jo.Smith+news@example.org")
    assert all(c.isalnum() or c in "-_." for c in token)
    assert read_unsubscribe_token("k2", token) is None
    forged = unsubscribe_token("k1", "weekly", "other@example.org").split(".")[0] + "." + token.split(".")[1]
    assert read_unsubscribe_token("k1", forged) is None
    assert read_unsubscribe_token("k1", "garbage") is None and read_unsubscribe_token("k1", "a.b.c") is None
