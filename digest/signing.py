"""Signed tokens for links in emails (unsubscribe): no guessable ids, secret from the env."""

from __future__ import annotations

import logging
import os

from itsdangerous import BadSignature, URLSafeSerializer

from .config import Settings
from .errors import DigestError

log = logging.getLogger(__name__)
INSECURE_KEY = "insecure-dev-key-do-not-use-for-real-mail"
UNSUBSCRIBE = "digest-unsubscribe"


class SecretMissing(DigestError):
    exit_code = 2


def secret_key(settings: Settings) -> str:
    """The signing key from the environment; the fixed dev key only when the config
    says [web].insecure_dev_mode = true."""
    key = os.environ.get(settings.web.secret_key_env, "")
    if key:
        return key
    if settings.web.insecure_dev_mode:
        log.warning("insecure dev mode: links are signed with a public key; set %s for real use",
                    settings.web.secret_key_env)
        return INSECURE_KEY
    raise SecretMissing(f"{settings.web.secret_key_env} is not set; export a long random secret "
                        f"(python -c 'import secrets; print(secrets.token_urlsafe(32))')")


def unsubscribe_token(key: str, list_name: str, email_key: str) -> str:
    return URLSafeSerializer(key, salt=UNSUBSCRIBE).dumps([list_name, email_key])


def read_unsubscribe_token(key: str, token: str) -> tuple[str, str] | None:
    try:
        list_name, address = URLSafeSerializer(key, salt=UNSUBSCRIBE).loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    return str(list_name), str(address)
