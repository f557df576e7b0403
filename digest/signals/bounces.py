"""What a message in the bounce mailbox says, read with Python's email package.

- A delivery status notification (RFC 3464, multipart/report; report-type=delivery-status):
  `Status: 5.x.x` is a hard bounce, `4.x.x` a soft one; `Final-Recipient` names the address.
- An abuse feedback report (ARF, RFC 5965, report-type=feedback-report): a complaint.
- An auto-reply (RFC 3834 `Auto-Submitted`, `X-Autoreply`, "Out of office" subjects): nothing.
- A mail server's bounce in plain words (Exim, qmail): from MAILER-DAEMON or postmaster with
  an SMTP reply and status in its text (`550 5.1.1`): hard or soft as that status says.
- Anything else is `unknown`: kept for the editor.

The recipient is found by what the message carries, most trusted first: the signed VERP token
of the address it was sent to (bounces+TOKEN@), the original's unsubscribe token, the
original's Message-ID, then the address the report names. Nothing here touches a database.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.utils import parseaddr

HARD, SOFT, COMPLAINT, AUTO_REPLY, NOTICE, UNKNOWN = "hard", "soft", "complaint", "auto-reply", "notice", "unknown"
MAX_MESSAGE = 10 * 1024 * 1024       # bytes read of one message: a bounce quotes at most the original
MAX_DETAIL = 300
AUTO_SUBJECTS = re.compile(r"^\s*(out of (the )?office|automatic reply|auto[- ]?reply|autoreply|auto:|"
                           r"abwesenheitsnotiz|absence|r[ée]ponse automatique|on vacation|away from)",
                           re.IGNORECASE)
DAEMONS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon")
FAILURE_SUBJECTS = re.compile(r"undeliver|returned|failure|failed|delivery status|not delivered|"
                              r"could not be delivered|delivery problem", re.IGNORECASE)
SMTP_STATUS = re.compile(r"\b([45])\d\d[ -]([45]\.\d{1,3}\.\d{1,3})\b")
ADDRESS = re.compile(r"<?([^\s<>@]{1,64}@[^\s<>@.]{1,63}(?:\.[^\s<>@.:;,]{1,63}){1,8})>?")   # bounded: linear
MAX_LINE = 1000           # characters of a bounce's status line looked at
MAX_SEARCH = 1_000_000    # characters searched for a token
MAX_PARTS = 200           # MIME parts of a bounce walked
ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})")


@dataclass(frozen=True)
class Bounce:
    message_id: str                   # the bounce's own Message-ID (a hash of it when absent or long)
    kind: str                         # hard, soft, complaint, auto-reply, notice, unknown
    status: str = ""                  # 5.1.1, 4.2.2, abuse...
    address: str = ""                 # the address the report names
    verp: str = ""                    # a VERP token (unchecked: the caller verifies it)
    unsubscribe: str = ""             # the original's unsubscribe token (unchecked)
    original_id: str = ""             # the original's Message-ID
    detail: str = ""                  # the server's words, one line


def classify(raw: bytes, return_path: str = "", base_url: str = "") -> Bounce:
    """The message's meaning, never an exception: a message the email package cannot take
    apart (headers nested past recursion, an id it chokes on) is `unknown`, kept for the
    editor. return_path (bounces@example.org) and base_url say where the VERP and
    unsubscribe tokens of digest's own mail are to be found."""
    raw = raw[:MAX_MESSAGE]
    try:
        return _classify(raw, return_path, base_url)
    except Exception as error:  # noqa: BLE001 - a stranger's message: whatever breaks, it is one unknown message
        return Bounce(_hashed(raw), UNKNOWN, detail=_one_line(f"could not be read ({error.__class__.__name__})"))


def _classify(raw: bytes, return_path: str, base_url: str) -> Bounce:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    kind, status, address, detail, original = _meaning(message)
    headers = _headers_text(original)
    return Bounce(message_key(message, raw), kind, _clean(status)[:20], _clean(address)[:320],
                  _verp(raw[:MAX_SEARCH].decode("latin-1"), return_path), _unsubscribe(headers, base_url),
                  _clean(_original_id(original)), _one_line(detail))


def _headers_text(original: Message | None) -> str:
    """The original's headers as text: where its List-Unsubscribe (and token) is."""
    if original is None:
        return ""
    return "\n".join(f"{name}: {value}" for name, value in original.items())[:MAX_SEARCH]


def _meaning(message: EmailMessage) -> tuple[str, str, str, str, Message | None]:
    """(kind, status, address, detail, the original message or its headers)."""
    report = message.get_param("report-type", "", header="content-type")
    if message.get_content_type() == "multipart/report" and str(report).lower() == "delivery-status":
        return _dsn(message)
    if message.get_content_type() == "multipart/report" and str(report).lower() == "feedback-report":
        return _arf(message)
    plain = _plain_bounce(message)                # mail servers mark their bounces Auto-Submitted too
    if plain[0] == UNKNOWN and _auto_reply(message):
        return AUTO_REPLY, "", parseaddr(str(message.get("From", "")))[1], str(message.get("Subject", "")), None
    return plain


def _dsn(message: EmailMessage) -> tuple[str, str, str, str, Message | None]:
    blocks = [block for part in _walk(message) if part.get_content_type() == "message/delivery-status"
              for block in _payload_list(part)]
    recipients = [block for block in blocks if block.get("Final-Recipient") or block.get("Action")]
    if not recipients:
        return UNKNOWN, "", "", "a delivery report without a recipient", _original(message)
    block = next((b for b in recipients if str(b.get("Action", "")).strip().lower() == "failed"), recipients[0])
    action = str(block.get("Action", "")).strip().lower()
    status = _status(str(block.get("Status", "")))
    address = _typed_address(str(block.get("Final-Recipient") or block.get("Original-Recipient") or ""))
    detail = str(block.get("Diagnostic-Code", "")).partition(";")[2] or action
    if action in ("delivered", "relayed", "expanded"):
        return NOTICE, status, address, f"{action}: {detail}", _original(message)
    kind = HARD if status.startswith("5") else SOFT if status.startswith("4") or action == "delayed" else UNKNOWN
    return kind, status, address, detail, _original(message)


def _arf(message: EmailMessage) -> tuple[str, str, str, str, Message | None]:
    fields = next((block for part in _walk(message) if part.get_content_type() == "message/feedback-report"
                   for block in _payload_list(part)), None)
    if fields is None:
        return UNKNOWN, "", "", "a feedback report without its fields", _original(message)
    feedback = str(fields.get("Feedback-Type", "")).strip().lower() or "abuse"
    address = parseaddr(str(fields.get("Original-Rcpt-To", "")))[1]
    kind = COMPLAINT if feedback in ("abuse", "fraud", "virus", "other") else NOTICE
    return kind, feedback, address, f"feedback report: {feedback}", _original(message)


def _auto_reply(message: EmailMessage) -> bool:
    submitted = str(message.get("Auto-Submitted", "")).strip().lower()
    if submitted and submitted != "no":
        return True
    if any(message.get(name) for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponse")):
        return True
    if str(message.get("Precedence", "")).strip().lower() == "auto_reply":
        return True
    return bool(AUTO_SUBJECTS.match(str(message.get("Subject", ""))))


def _plain_bounce(message: EmailMessage) -> tuple[str, str, str, str, Message | None]:
    sender = parseaddr(str(message.get("From", "")))[1].lower().partition("@")[0]
    if sender not in DAEMONS or not FAILURE_SUBJECTS.search(str(message.get("Subject", ""))):
        return UNKNOWN, "", "", str(message.get("Subject", "")), None
    body = _text_of(message)
    found = SMTP_STATUS.search(body)
    if found is None:
        return UNKNOWN, "", "", str(message.get("Subject", "")), None
    line = next((line for line in body.splitlines() if found.group(0) in line), found.group(0))[:MAX_LINE]
    address = ADDRESS.search(line)
    kind = HARD if found.group(2).startswith("5") else SOFT
    return kind, found.group(2), address.group(1) if address else "", line.strip(), _original(message)


def _walk(message: Message) -> list[Message]:
    """The message's parts, at most MAX_PARTS of them (a bounce has a handful)."""
    found = []
    for part in message.walk():
        found.append(part)
        if len(found) >= MAX_PARTS:
            break
    return found


def _text_of(message: EmailMessage) -> str:
    parts = []
    for part in _walk(message):
        if part.get_content_type() == "text/plain" and isinstance(part, EmailMessage):
            try:
                parts.append(str(part.get_content()))
            except (LookupError, ValueError):
                continue
    return "\n".join(parts)[:200_000]


def _payload_list(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [item for item in payload if isinstance(item, Message)]
    return [email.message_from_string(str(payload), policy=email.policy.default)] if payload else []


def _original(message: EmailMessage) -> Message | None:
    """The original message the report quotes (message/rfc822), or its headers (text/rfc822-headers)."""
    for part in _walk(message):
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            found = _payload_list(part)
            if found:
                return found[0]
        if kind in ("text/rfc822-headers", "message/global-headers"):
            return _headers_of(part)
    return None


def _headers_of(part: Message) -> Message:
    payload = part.get_payload(decode=True)
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(part.get_payload())
    return email.message_from_string(text, policy=email.policy.default)


def _original_id(original: Message | None) -> str:
    found = str(original.get("Message-ID", "")).strip() if original is not None else ""
    return found[:250] if found.startswith("<") and found.endswith(">") else ""


def message_key(message: EmailMessage, raw: bytes) -> str:
    """What a message is applied once by: its Message-ID as written (read raw: the email
    package's parser breaks on a stranger's `Message-ID: <`), or a hash of the message
    when it has none, or one too long or odd to be a key. Never an exception."""
    found = next((str(value) for name, value in message.raw_items() if name.lower() == "message-id"), "").strip()
    if found and len(found) <= 200 and found.isascii() and found.isprintable():
        return found
    return _hashed(raw)


def _hashed(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _clean(text: str) -> str:
    """No NUL or other control character (PostgreSQL cannot store a NUL in text)."""
    return "".join(c for c in text if c.isprintable())


def _status(value: str) -> str:
    found = ENHANCED.match(value)
    return ".".join(found.groups()) if found else ""


def _typed_address(value: str) -> str:
    """`rfc822; reader@example.org` -> the address."""
    kind, _, address = value.partition(";")
    return parseaddr((address if address else kind).strip())[1]


def _verp(text: str, return_path: str) -> str:
    """The token of the first `local+TOKEN@domain` of return_path in the message."""
    local, _, domain = return_path.rpartition("@")
    if not local:
        return ""
    found = re.search(rf"{re.escape(local)}\+([0-9a-z]{{1,7}}-[a-z2-7]{{12}})@{re.escape(domain)}", text,
                      re.IGNORECASE)
    return found.group(1) if found else ""


def _unsubscribe(text: str, base_url: str) -> str:
    if not base_url:
        return ""
    found = re.search(rf"{re.escape(base_url)}/unsubscribe/([A-Za-z0-9_=-]{{16,400}})", text)
    return found.group(1) if found else ""


def _one_line(text: str) -> str:
    return _clean(" ".join(text.split()))[:MAX_DETAIL]
