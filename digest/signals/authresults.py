"""Whether the receiving server vouches for a message's sender: its Authentication-Results.

The mail server that delivered a message to the mailbox writes, on top of it, what it
found (RFC 8601): `Authentication-Results: mx.google.com; dkim=pass header.i=@example.org
header.s=k1; spf=pass (google.com: ...) smtp.mailfrom=editor@example.org`. Only the
topmost such header can be the receiving server's own: any below it came with the message
and anyone could have written them. And a server that writes none leaves a stranger's on
top, so the topmost vouches only when it names the server trusted (`[mailbox] authserv_id`,
or the provider's known name): its authserv-id (the name before the first ';') is that
name, or a name below it on a dot boundary (`mx1.example.net` under `example.net`), in any
case. Microsoft writes its header without one (`spf=pass (sender IP is ...) ...`): such a
header vouches only when the name trusted is NONE_GIVEN.

A trusted header passes for a domain when it says DKIM passed with header.d (or header.i)
in exactly that domain; failing that, when SPF passed with smtp.mailfrom in it and no
DKIM signature failed (DKIM absent, `none`, or passing for another domain: a signature
that failed is not outweighed by the envelope). The header is a stranger's text: read
bounded, comments (nested, escaped) and quoted strings taken as RFC 8601 writes them,
never an exception. No database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

HEADER = "authentication-results"
MAX_HEADER = 8_000              # characters of the header read
MAX_HEADERS = 200               # header lines looked through for the topmost one
MAX_RESULTS = 50                # results (method=result ...) of one header read
MAX_SHOWN = 80                  # characters of a stranger's server name put in words
SPECIAL = set(' \t;=()"\r\n')
NONE_GIVEN = "none-given"       # the name trusted that stands for "the topmost header names no server"
DKIM_NOT_FAILED = ("pass", "none")
_UNSHOWN = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Result:
    method: str                             # dkim, spf, dmarc, ... (lower-case, no version)
    result: str                             # pass, fail, none, ... (lower-case)
    properties: tuple[tuple[str, str], ...]  # ("header.d", "example.org"), ... (names lower-case)

    def get(self, name: str) -> str:
        return next((value for key, value in self.properties if key == name), "")


@dataclass(frozen=True)
class Header:
    server: str | None          # its authserv-id (lower-case, no trailing dot); None: it names none
    results: list[Result]


def topmost(message: Message) -> str | None:
    """The raw value of the message's topmost Authentication-Results header, unfolded, or None."""
    try:
        items = message.raw_items()
        for number, (name, value) in enumerate(items):
            if number >= MAX_HEADERS:
                return None
            if name.strip().lower() == HEADER:
                return str(value)[:MAX_HEADER].replace("\r", " ").replace("\n", " ")
    except Exception:  # noqa: BLE001 - a stranger's header the email package cannot hand over: no results
        return None
    return None


def parse(value: str) -> Header:
    """The header value's authserv-id and results. The first statement (before the first
    ';') is the authserv-id (and a version), unless it holds a result: then none is named."""
    statements = _statements(_tokens(value[:MAX_HEADER]))
    first = statements[0]
    named = not any(kind == "=" for kind, _ in first)
    server = _name(next((text for kind, text in first if kind in ("word", "quoted")), "")) if named else None
    found = []
    for statement in statements[1 if named else 0:][:MAX_RESULTS]:
        result = _result(statement)
        if result is not None:
            found.append(result)
    return Header(server, found)


def results(value: str) -> list[Result]:
    """The results the header value states (the authserv-id left out)."""
    return parse(value).results


def trusted(server: str | None, trust: str) -> bool:
    """Whether a header naming server (None: naming none) is the trusted server's: the
    name itself or one below it on a dot boundary, in any case; NONE_GIVEN: one naming none."""
    trust = _name(trust)
    if not trust:
        return False
    if trust == NONE_GIVEN:
        return server is None
    return bool(server) and (server == trust or (server or "").endswith(f".{trust}"))


def passes(message: Message, domain: str, trust: str) -> bool:
    """Whether the topmost Authentication-Results is the trusted server's and says DKIM
    passed for domain (header.d or header.i), or SPF passed with smtp.mailfrom in domain and
    no DKIM signature failed."""
    return not why_not(message, domain, trust)


def why_not(message: Message, domain: str, trust: str) -> str:
    """Why a message does not pass for domain, in words for the editor; "" when it passes."""
    if not _name(trust):
        return "digest does not know which server receives the mailbox's mail ([mailbox] authserv_id is not set)"
    value = topmost(message)
    if value is None:
        return "the receiving server added no Authentication-Results header"
    header = parse(value)
    if not trusted(header.server, trust):
        return (f"the topmost Authentication-Results was written by {_writer(header.server)}, not by the server "
                f"that receives the mailbox's mail ({_trusted_words(trust)}): anyone can write one")
    domain = domain.lower()
    if domain and _dkim_passes(header.results, domain):
        return ""
    dkim = [r for r in header.results if r.method == "dkim"]
    failed = [r for r in dkim if r.result not in DKIM_NOT_FAILED]
    if domain and not failed and any(_spf_passes(r, domain) for r in header.results):
        return ""
    said = ", ".join(f"{_shown(r.method)}={_shown(r.result)}" for r in header.results
                     if r.method in ("dkim", "spf"))[:200]
    if failed and any(_spf_passes(r, domain) for r in header.results):
        return (f"the receiving server's Authentication-Results ({said}) says a DKIM signature failed: an SPF pass "
                f"does not stand in for it")
    return (f"the receiving server's Authentication-Results ({said or 'no DKIM or SPF result'}) does not say "
            f"DKIM or SPF passed for {domain}")


def _dkim_passes(found: list[Result], domain: str) -> bool:
    return any(r.method == "dkim" and r.result == "pass" and
               domain in (_domain(r.get("header.d")), _domain(r.get("header.i"))) for r in found)


def _spf_passes(result: Result, domain: str) -> bool:
    return result.method == "spf" and result.result == "pass" and _domain(result.get("smtp.mailfrom")) == domain


def _domain(value: str) -> str:
    """The domain of `local@domain`, `@domain` or `domain`, lower-case, no trailing dot."""
    return value.rpartition("@")[2].strip().rstrip(".").lower()


def _name(value: str) -> str:
    return value.strip().rstrip(".").lower()


def _shown(text: str) -> str:
    """A stranger's word as the editor is shown it: letters, digits, '.', '_', '-'; bounded."""
    return _UNSHOWN.sub("?", text[:MAX_SHOWN])


def _writer(server: str | None) -> str:
    if server is None:
        return "a server that names none"
    return _shown(server) if server else "a server with an empty name"


def _trusted_words(trust: str) -> str:
    if _name(trust) == NONE_GIVEN:
        return "one that names none, as [mailbox] authserv_id = none-given says"
    return _name(trust)


# ------------------------------------------------------------------ RFC 8601's syntax

Token = tuple[str, str]         # ("word", text), ("quoted", text), ("=", "="), (";", ";"); ("space", " ") between


def _tokens(value: str) -> list[Token]:
    """Words, quoted strings, '=' and ';', comments (nested, with escapes) dropped; a
    ("space", " ") where white space or a comment was (a value is what touches its '=')."""
    tokens: list[Token] = []
    index, size = 0, len(value)
    while index < size:
        char = value[index]
        if char in " \t\r\n" or char == "(":
            index = _skip_comment(value, index) if char == "(" else index + 1
            if not tokens or tokens[-1][0] != "space":
                tokens.append(("space", " "))
        elif char == ")":
            index += 1                                      # a stray closing parenthesis: nothing
        elif char in ";=":
            tokens.append((char, char))
            index += 1
        elif char == '"':
            text, index = _quoted(value, index)
            tokens.append(("quoted", text))
        else:
            start = index
            while index < size and value[index] not in SPECIAL:
                index += 1
            tokens.append(("word", value[start:index]))
    return tokens


def _skip_comment(value: str, index: int) -> int:
    """The index after the comment opening at index (nested, '\\' escapes; unclosed: the end)."""
    depth = 0
    while index < len(value):
        char = value[index]
        if char == "\\":
            index += 2
            continue
        depth += 1 if char == "(" else -1 if char == ")" else 0
        index += 1
        if depth == 0:
            return index
    return index


def _quoted(value: str, index: int) -> tuple[str, int]:
    """The text of the quoted string opening at index, and the index after it."""
    out, index = [], index + 1
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            out.append(value[index + 1])
            index += 2
            continue
        if char == '"':
            return "".join(out), index + 1
        out.append(char)
        index += 1
    return "".join(out), index


def _statements(tokens: list[Token]) -> list[list[Token]]:
    """The tokens between the ';'s."""
    statements: list[list[Token]] = [[]]
    for token in tokens:
        if token[0] == ";":
            statements.append([])
        else:
            statements[-1].append(token)
    return statements


def _result(statement: list[Token]) -> Result | None:
    """`method[/version] = result [reason=...] [ptype.property=value ...]`, or None."""
    pairs = _pairs(statement)
    if not pairs or "." in pairs[0][0]:
        return None
    method, result = pairs[0]
    properties = tuple((name, value) for name, value in pairs[1:] if "." in name)
    return Result(method.partition("/")[0].strip().lower(), result.strip().lower(), properties)


def _pairs(statement: list[Token]) -> list[tuple[str, str]]:
    """Each `name = value` of a statement, in order (names lower-case); what is not one is
    passed over. A value is the pieces that touch ('"a b"@example.org' is one)."""
    pairs, index, size = [], 0, len(statement)
    while index < size:
        kind, name = statement[index]
        equals = _after_space(statement, index + 1)
        if kind != "word" or equals >= size or statement[equals][0] != "=":
            index += 1
            continue
        end = start = _after_space(statement, equals + 1)
        while end < size and statement[end][0] in ("word", "quoted"):
            end += 1
        if end > start:
            pairs.append((name.lower(), "".join(text for _, text in statement[start:end])))
        index = max(end, index + 1)
    return pairs


def _after_space(statement: list[Token], index: int) -> int:
    while index < len(statement) and statement[index][0] == "space":
        index += 1
    return index
