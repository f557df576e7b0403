"""Whether the receiving server vouches for a message's sender: its Authentication-Results.

The mail server that delivered a message to the mailbox writes, on top of it, what it
found (RFC 8601): `Authentication-Results: mx.google.com; dkim=pass header.i=@example.org
header.s=k1; spf=pass (google.com: ...) smtp.mailfrom=editor@example.org`. Only the
topmost such header is the receiving server's own: any below it came with the message
and anyone could have written them. A message passes for a domain when that header says
DKIM passed with header.d (or header.i) in exactly that domain, or SPF passed with
smtp.mailfrom in it. The header is a stranger's text: read bounded, comments (nested,
escaped) and quoted strings taken as RFC 8601 writes them, never an exception.
No database.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message

HEADER = "authentication-results"
MAX_HEADER = 8_000              # characters of the header read
MAX_HEADERS = 200               # header lines looked through for the topmost one
MAX_RESULTS = 50                # results (method=result ...) of one header read
SPECIAL = set(' \t;=()"\r\n')


@dataclass(frozen=True)
class Result:
    method: str                             # dkim, spf, dmarc, ... (lower-case, no version)
    result: str                             # pass, fail, none, ... (lower-case)
    properties: tuple[tuple[str, str], ...]  # ("header.d", "example.org"), ... (names lower-case)

    def get(self, name: str) -> str:
        return next((value for key, value in self.properties if key == name), "")


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


def results(value: str) -> list[Result]:
    """The results the header value states (the authserv-id before the first ';' left out)."""
    statements = _statements(_tokens(value[:MAX_HEADER]))
    found = []
    for statement in statements[1:MAX_RESULTS + 1]:
        result = _result(statement)
        if result is not None:
            found.append(result)
    return found


def passes(message: Message, domain: str) -> bool:
    """Whether the receiving server's (topmost) Authentication-Results says DKIM passed
    for domain (header.d or header.i) or SPF passed with smtp.mailfrom in domain."""
    value = topmost(message)
    return bool(value) and bool(domain) and any(_vouches(result, domain.lower()) for result in results(value or ""))


def why_not(message: Message, domain: str) -> str:
    """Why a message does not pass for domain, in words for the editor; "" when it passes."""
    value = topmost(message)
    if value is None:
        return "the receiving server added no Authentication-Results header"
    if passes(message, domain):
        return ""
    said = ", ".join(f"{r.method}={r.result}" for r in results(value) if r.method in ("dkim", "spf"))[:200]
    return (f"the receiving server's Authentication-Results ({said or 'no DKIM or SPF result'}) does not say "
            f"DKIM or SPF passed for {domain}")


def _vouches(result: Result, domain: str) -> bool:
    if result.result != "pass":
        return False
    if result.method == "dkim":
        return _domain(result.get("header.d")) == domain or _domain(result.get("header.i")) == domain
    if result.method == "spf":
        return _domain(result.get("smtp.mailfrom")) == domain
    return False


def _domain(value: str) -> str:
    """The domain of `local@domain`, `@domain` or `domain`, lower-case, no trailing dot."""
    return value.rpartition("@")[2].strip().rstrip(".").lower()


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
