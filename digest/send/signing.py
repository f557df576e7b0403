"""Tokens for links in emails (unsubscribe, confirm a subscription): opaque, tamper-proof,
keyed by the secret from the environment.

A token is sealed with AES-SIV (deterministic authenticated encryption, keyed from the
secret by HKDF, the token's purpose as associated data), then base64url: it names its
list and subscriber to digest alone; a log, a proxy or a forwarded mail sees random
characters. It still reads after a restart (only the secret is needed) and a token made
for one purpose never opens as another. Tokens of earlier versions (the address in
readable base64, signed) are still read, so links in mail already sent keep working.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature, SignatureExpired, Signer, URLSafeTimedSerializer

from ..config import SendSettings
from ..errors import SendError, UsageError

log = logging.getLogger(__name__)
INSECURE_KEY = "insecure-dev-key-do-not-use-for-real-mail"
UNSUBSCRIBE = "digest-unsubscribe"          # the purpose of unsubscribe tokens (and the old signer's salt)
SUBSCRIBE = "digest-subscribe"              # ... of confirmation tokens


class SecretMissing(SendError):
    exit_code = 2


class BadLink(UsageError):
    """A link's token is not one of ours (tampered, cut, another instance's)."""


class ExpiredLink(UsageError):
    """A confirmation link older than [web].confirm_max_age_hours."""


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


# ------------------------------------------------------------------ sealing

@lru_cache(maxsize=8)
def _sealer(key: str) -> AESSIV:
    """AES-SIV keyed once per secret (HKDF-SHA256: the secret's bytes are never the key itself)."""
    material = HKDF(hashes.SHA256(), length=64, salt=b"digest-links", info=b"aes-siv").derive(key.encode())
    return AESSIV(material)


def seal(key: str, purpose: str, text: str) -> str:
    """text, encrypted and authenticated for purpose: URL-safe, opaque."""
    sealed = _sealer(key).encrypt(text.encode("utf-8"), [purpose.encode()])
    return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")


def unseal(key: str, purpose: str, token: str) -> str | None:
    """The text sealed in token for purpose, or None (tampered, another key or purpose, or
    another spelling of the same bytes: a token has one spelling only)."""
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii") + b"=" * (-len(token) % 4))
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
            return None
        return _sealer(key).decrypt(raw, [purpose.encode()]).decode("utf-8")
    except (InvalidTag, ValueError, UnicodeError, binascii.Error):
        return None


# ------------------------------------------------------------------ unsubscribe

def unsubscribe_token(key: str, list_name: str, email_key: str) -> str:
    """The list and the subscriber's address, sealed (the same token each time for them)."""
    return seal(key, UNSUBSCRIBE, f"{list_name}\n{email_key}")


def read_unsubscribe_token(key: str, token: str) -> tuple[str, str] | None:
    """(list, address) from a token, or None if it was not made with key."""
    text = _legacy_unsubscribe(key, token) if "." in token else unseal(key, UNSUBSCRIBE, token)
    if text is None:
        return None
    list_name, _, address = text.partition("\n")
    return (list_name, address) if address else None


@lru_cache(maxsize=8)
def _signer(key: str) -> Signer:
    return Signer(key, salt=UNSUBSCRIBE)


def _legacy_unsubscribe(key: str, token: str) -> str | None:
    """Links sent before tokens were sealed: base64 of list and address, signed."""
    try:
        payload = _signer(key).unsign(token.encode("ascii"))
        return base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)).decode()
    except (BadSignature, ValueError, UnicodeError):
        return None


# ------------------------------------------------------------------ confirm a subscription

def confirmation_token(key: str, list_name: str, address: str, name: str, now: datetime) -> str:
    """What a sign-up asked for (list, address, the name typed) and when, sealed."""
    return seal(key, SUBSCRIBE, json.dumps([list_name, address, name, int(now.timestamp())]))


def read_confirmation_token(key: str, token: str, max_age: timedelta,
                            now: datetime) -> tuple[str, str, str, datetime]:
    """(list, address, name, asked at) of a confirmation link; BadLink or ExpiredLink."""
    if "." in token:
        return _legacy_confirmation(key, token, max_age)
    text = unseal(key, SUBSCRIBE, token)
    try:
        list_name, address, name, stamp = json.loads(text or "")
        asked = datetime.fromtimestamp(int(stamp), UTC)
    except (ValueError, TypeError, OverflowError, OSError):
        raise BadLink("This confirmation link is not valid.") from None
    if now - asked > max_age:
        raise ExpiredLink("This confirmation link has expired; subscribe again to get a new one.")
    return str(list_name), str(address), str(name), asked


def _legacy_confirmation(key: str, token: str, max_age: timedelta) -> tuple[str, str, str, datetime]:
    """Links sent before tokens were sealed (readable JSON, signed and timed by itsdangerous)."""
    try:
        (name, address, person), asked = URLSafeTimedSerializer(key, salt=SUBSCRIBE).loads(
            token, max_age=int(max_age.total_seconds()), return_timestamp=True)
    except SignatureExpired:
        raise ExpiredLink("This confirmation link has expired; subscribe again to get a new one.") from None
    except (BadSignature, ValueError, TypeError):
        raise BadLink("This confirmation link is not valid.") from None
    return str(name), str(address), str(person), asked


def instance_id(key: str, database_url: str) -> str:
    """What `/health` answers and `digest doctor` expects: only an instance with this secret
    and this database knows it."""
    return hashlib.sha256(seal(key, "digest-health", database_url).encode()).hexdigest()[:24]


# ------------------------------------------------------------------ short signed ids (links, return paths)
# A click's link and a bounce's recipient are named by a number that is no secret; a MAC
# (HMAC-SHA256, keyed from the secret per purpose) makes it unforgeable and ties it to
# this instance. Short, because each one is in a URL or an address.

CLICK = "digest-click"
RETURN_PATH = "digest-return-path"
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


@lru_cache(maxsize=16)
def _mac_key(key: str, purpose: str) -> bytes:
    return HKDF(hashes.SHA256(), length=32, salt=b"digest-ids", info=purpose.encode()).derive(key.encode())


def _mac(key: str, purpose: str, text: str, size: int) -> bytes:
    return hmac.new(_mac_key(key, purpose), text.encode("ascii"), hashlib.sha256).digest()[:size]


def click_token(key: str, edition_id: int, n: int) -> str:
    """`EDITION.LINK.MAC`: the edition and its link number, signed; never a subscriber."""
    mac = base64.urlsafe_b64encode(_mac(key, CLICK, f"{edition_id}.{n}", 9)).decode("ascii")
    return f"{edition_id}.{n}.{mac}"


def read_click_token(key: str, token: str) -> tuple[int, int] | None:
    """(edition id, link number) of a token this instance made, else None."""
    edition, _, rest = token.partition(".")
    n, _, mac = rest.partition(".")
    if not (_plain_number(edition) and _plain_number(n)) or len(mac) != 12:
        return None
    expected = click_token(key, int(edition), int(n))
    return (int(edition), int(n)) if hmac.compare_digest(expected.encode(), token.encode("utf-8", "replace")) \
        else None


def return_path_token(key: str, delivery_id: int) -> str:
    """`ID-MAC` for a VERP address: lower-case letters and digits only (a mail server may
    fold the case of an address), at most 19 characters."""
    return address_token(key, RETURN_PATH, delivery_id)


def read_return_path_token(key: str, token: str) -> int | None:
    """The delivery id of a return-path token this instance made (any case), else None."""
    return read_address_token(key, RETURN_PATH, token)


# The tokens of mail mode's plus addresses (LOCAL+unsubscribe-TOKEN@DOMAIN): each names a
# row by its number (a subscriber, a sign-up by mail, a held edition) and is signed for
# its purpose, so an address reveals nobody and a token for one purpose never opens another.
MAIL_UNSUBSCRIBE = "digest-mail-unsubscribe"     # a subscribers row: that reader, on that list
MAIL_CONFIRM = "digest-mail-confirm"             # a mail_signups row: that request to subscribe
MAIL_APPROVE = "digest-mail-approve"             # an editions row held for approval


def address_token(key: str, purpose: str, number: int) -> str:
    """`ID-MAC` for purpose: lower-case letters and digits (a server may fold an address's
    case), at most 20 characters."""
    mac = base64.b32encode(_mac(key, purpose, str(number), 8)).decode("ascii").rstrip("=").lower()
    return f"{_base36(number)}-{mac[:12]}"


def read_address_token(key: str, purpose: str, token: str) -> int | None:
    """The number in a token this instance made for purpose (any case), else None."""
    token = token.lower()
    number, _, mac = token.partition("-")
    if not number or len(number) > 7 or any(c not in _BASE36 for c in number) or len(mac) != 12:
        return None
    value = int(number, 36)
    return value if hmac.compare_digest(address_token(key, purpose, value), token) else None


def _base36(number: int) -> str:
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = _BASE36[digit] + digits
        if not number:
            return digits


def _plain_number(text: str) -> bool:
    return text.isascii() and text.isdigit() and 0 < len(text) <= 10 and int(text) < 2**31
