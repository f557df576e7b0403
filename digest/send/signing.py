"""Signed tokens for links in emails (unsubscribe): no guessable ids, secret from the env."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
from functools import lru_cache

from itsdangerous import BadSignature, Signer

from ..config import SendSettings
from ..errors import SendError

log = logging.getLogger(__name__)
INSECURE_KEY = "insecure-dev-key-do-not-use-for-real-mail"
UNSUBSCRIBE = "digest-unsubscribe"


class SecretMissing(SendError):
    exit_code = 2


def secret_key(settings: SendSettings) -> str:
    """The signing key from the environment; the fixed dev key only when the config
    says [web].insecure_dev_mode = true."""
    key = os.environ.get(settings.secret_key_env, "")
    if key:
        return key
    if settings.insecure_dev_mode:
        log.warning("insecure dev mode: links are signed with a public key; set %s for real use",
                    settings.secret_key_env)
        return INSECURE_KEY
    raise SecretMissing(f"{settings.secret_key_env} is not set; export a long random secret "
                        f"(python -c 'import secrets; print(secrets.token_urlsafe(32))')")


@lru_cache(maxsize=8)
def _signer(key: str) -> Signer:
    return Signer(key, salt=UNSUBSCRIBE)


@lru_cache(maxsize=8)
def _mac(key: str) -> hmac.HMAC:
    """itsdangerous's HMAC for key, keyed once (it derives the key again for every token)."""
    return hmac.new(_signer(key).derive_key(), digestmod=hashlib.sha1)


def unsubscribe_token(key: str, list_name: str, email_key: str) -> str:
    """list and address, base64url, signed (HMAC-SHA1 as itsdangerous's Signer signs, and
    reads back: tests/test_signing.py checks the two are the same): URL-safe."""
    payload = base64.urlsafe_b64encode(f"{list_name}\n{email_key}".encode()).rstrip(b"=")
    mac = _mac(key).copy()
    mac.update(payload)
    return (payload + b"." + base64.urlsafe_b64encode(mac.digest()).rstrip(b"=")).decode("ascii")


def read_unsubscribe_token(key: str, token: str) -> tuple[str, str] | None:
    """(list, address) from a token, or None if it was not signed with key."""
    try:
        payload = _signer(key).unsign(token.encode("ascii"))
        text = base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)).decode()
    except (BadSignature, ValueError, UnicodeError):
        return None
    list_name, _, address = text.partition("\n")
    return (list_name, address) if address else None
