"""List files: the editor's CSV of a list's subscribers, read and synced into the database.

The CSV (email, name, more columns kept) is what the editor edits; the database holds
who is subscribed, and a suppression table (unsubscribed, bounced, complained) that
always wins over the file. Addresses are checked for syntax only (no DNS).
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import io
import logging
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

from .. import crash
from ..db.lists import ListStore, ListSync
from ..errors import SendError
from ..models import FileStamp, Subscriber, SyncResult, email_key
from ..oneline import name_problem

log = logging.getLogger(__name__)

class ListFileError(SendError):
    """A subscriber file cannot be read at all (encoding, header)."""


@dataclass
class ReadResult:
    subscribers: list[Subscriber]
    problems: list[str]                 # one line each: file, line, what to do


_CASELESS = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)
_PLAIN_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")


def check_address(address: str, smtputf8: bool = True) -> str:
    """The normalised address (a Unicode domain kept as written, for display), or
    ValueError with the reason. Without smtputf8, a local part must be ASCII.

    Most addresses are a plain ASCII local part at a domain seen many times: the local
    part gets a fast syntax check and each distinct domain is validated once (cached);
    anything else goes through email-validator whole (tests/test_sync_scale.py checks the
    two agree)."""
    text = address.strip()
    local, at, domain = text.rpartition("@")
    if at and len(text) <= 254 and len(local) <= 64 and _PLAIN_LOCAL.match(local) and domain.isascii():
        normal = _domain(domain)
        if normal is not None:                    # RFC 2142 names (postmaster, www...) are lower-cased
            return f"{local.lower() if local.lower() in _CASELESS else local}@{normal}"
    return _check_whole(text, smtputf8)


GMAIL = ("gmail.com", "googlemail.com")      # one mailbox: dots in the local part are not read either
FASTMAIL = ("fastmail.com", "fastmail.fm")    # subdomain addressing: any@user.fastmail.com


def mailbox(address: str) -> str:
    """The mailbox an address reaches, for limits per recipient: its email_key with the local
    part's `+tag` dropped and case folded, so `Victim+1@Gmail.com` and `victim+2@gmail.com`
    are one; at Gmail (and Googlemail, the same mailboxes) dots are dropped too, so
    `v.ictim@gmail.com` and `victim@googlemail.com` are that one as well; at Fastmail
    `anything@victim.fastmail.com` is `victim@fastmail.com`. A few spellings
    too many merge elsewhere; no harm: this only counts."""
    local, _, domain = email_key(address).rpartition("@")
    local = (local.partition("+")[0] or local).casefold()
    if domain in GMAIL:
        return f"{local.replace('.', '') or local}@gmail.com"
    user, _, parent = domain.partition(".")
    if parent in FASTMAIL and user:                   # anything@victim.fastmail.com reaches victim
        return f"{user}@{parent}"
    return f"{local}@{domain}"


@functools.lru_cache(maxsize=65_536)
def _domain(domain: str) -> str | None:
    """A domain as email-validator normalises it, or None when it refuses it."""
    try:
        return validate_email(f"a@{domain}", check_deliverability=False).normalized.rpartition("@")[2]
    except EmailNotValidError:
        return None


def _check_whole(address: str, smtputf8: bool) -> str:
    try:
        found = validate_email(address, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(str(error)) from None
    if not smtputf8 and not found.local_part.isascii():
        raise ValueError("the part before the @ has non-ASCII characters, which SendGrid cannot deliver to")
    return found.normalized


CHUNK = 1000


def read_csv(path: Path, smtputf8: bool = True) -> ReadResult:
    """Read a whole list file: bad rows are reported (file and line) and skipped; a
    file that cannot be read at all (encoding, no email column) raises ListFileError."""
    found: dict[str, Subscriber] = {}
    problems: list[str] = []
    for chunk in read_chunks(path, problems, smtputf8=smtputf8):
        for subscriber in chunk:
            found.setdefault(subscriber.key, subscriber)
    return ReadResult(list(found.values()), problems)


@dataclass(frozen=True)
class Tail:
    """The rows appended to a file read whole before: from byte `offset` on, after its
    first `lines` lines (the header among them)."""

    offset: int
    lines: int


def read_chunks(path: Path, problems: list[str], known: Callable[[list[str]], set[str]] = lambda raw: set(),
                size: int = CHUNK, smtputf8: bool = True, skip: set[int] | None = None,
                tail: Tail | None = None) -> Iterator[list[Subscriber]]:
    """The file's subscribers, CHUNK rows at a time; memory does not grow with the file.
    The whole file is checked first (encoding, CSV structure), so nothing is yielded
    from a file that breaks later. Addresses `known(raw)` says are already stored as
    written skip the syntax check. A row whose hash is in `skip` (read unchanged last
    time) is not yielded, and its hash is taken out of `skip`: what is left there at the
    end are rows the file no longer has. With `tail`, only the rows appended since the
    file was read whole are checked and read (the header still names the columns)."""
    delimiter = _check_structure(path, tail)
    try:
        with ExitStack() as files:
            reader = csv.DictReader(files.enter_context(path.open(encoding="utf-8-sig", newline="")), strict=True,
                                    delimiter=delimiter)
            columns = _columns(path, reader.fieldnames)
            if tail is not None:                          # the header read, the rows from the tail on
                reader = csv.DictReader(files.enter_context(_text_from(path, tail)), strict=True, delimiter=delimiter)
            reader.fieldnames = columns
            yield from _chunks(path, reader, tail.lines if tail else 0, known, problems, size, smtputf8, skip)
    except (UnicodeDecodeError, csv.Error) as error:       # checked whole, then changed while being read
        raise ListFileError(f"{path}: changed while it was being read ({error}); run again once whatever "
                            "writes it has finished") from None


def _text_from(path: Path, tail: Tail) -> io.TextIOWrapper:
    raw = path.open("rb")
    raw.seek(tail.offset)
    return io.TextIOWrapper(raw, encoding="utf-8", newline="")


def _chunks(path: Path, reader: csv.DictReader[str], lines_before: int, known: Callable[[list[str]], set[str]],
            problems: list[str], size: int, smtputf8: bool, skip: set[int] | None) -> Iterator[list[Subscriber]]:
    header = "\x1f".join(reader.fieldnames or ())
    rows: list[tuple[int, dict[str, str], int]] = []
    for row in reader:
        digest = row_hash(header, row)
        if skip is not None and digest in skip:
            skip.discard(digest)
            continue
        rows.append((lines_before + reader.line_num, row, digest))
        if len(rows) == size:
            yield _subscribers(path, rows, known, problems, smtputf8)
            rows = []
    if rows:
        yield _subscribers(path, rows, known, problems, smtputf8)


# Column names of the usual exports (Mailchimp, Substack, Buttondown, spreadsheets), compared
# lower-case with spaces, "-" and "_" taken out; each maps to the name digest uses.
ALIASES = {
    "email": ("email", "emailaddress", "mail", "subscriberemail"),
    "name": ("name", "fullname", "subscribername", "displayname"),
    "first_name": ("firstname", "fname", "givenname"),
    "last_name": ("lastname", "lname", "surname", "familyname"),
}
_CANONICAL = {alias: column for column, aliases in ALIASES.items() for alias in aliases}
DELIMITERS = (",", ";", "\t")


def _canonical(column: str) -> str:
    return _CANONICAL.get(re.sub(r"[\s_-]+", "", column.lower()), column.strip().lower())


MAX_COLUMNS = 1000        # a list of subscribers has a handful; an export a few dozen


def _columns(path: Path, names: Sequence[str] | None) -> list[str]:
    """The header as digest's names: the first column of each kind takes the name, the
    others keep their own (lower-case), numbered when repeated. Linear in the header."""
    if names is not None and len(names) > MAX_COLUMNS:
        raise ListFileError(f"{path} line 1: {len(names)} columns, more than a list file has (at most "
                            f"{MAX_COLUMNS}); check that this is the list of subscribers (email, name, ...)")
    columns: list[str] = []
    taken: set[str] = set()
    numbered: dict[str, int] = {}             # the next number to try for a repeated name
    for raw in names or []:
        name = _canonical(raw)
        if name in taken:                     # a second column of a kind keeps its own name, made unique
            base = raw.strip().lower()
            name, number = base, numbered.get(base, 2)
            while name in taken:
                name, number = f"{base} ({number})", number + 1
            numbered[base] = number
        columns.append(name)
        taken.add(name)
    if "email" not in columns:
        found = ", ".join(c.strip() for c in names or []) or "nothing"
        raise ListFileError(f"{path} line 1: no 'email' column (found: {found}); the first line must name the "
                            "columns, e.g. email,name (Email Address, E-mail, email_address also work)")
    return columns


def _delimiter(header: str) -> str:
    """The delimiter that makes the header name an email column: comma, semicolon or tab."""
    for candidate in DELIMITERS:
        cells = next(csv.reader([header], delimiter=candidate), [])
        if any(_canonical(c) == "email" for c in cells):
            return candidate
    return max(DELIMITERS, key=header.count)       # no email column: the error lists the columns


def _name(row: dict[str, str]) -> str:
    """The name column, or first and last name joined (Mailchimp's export)."""
    whole = (row.get("name") or "").strip()
    if whole:
        return whole
    return " ".join(p for p in ((row.get("first_name") or "").strip(), (row.get("last_name") or "").strip()) if p)


def row_hash(header: str, row: dict[str, Any]) -> int:
    """A list-file row (with its header) as a signed 64-bit number: equal rows, equal numbers."""
    try:
        cells = "\x1f".join(row.values())
    except TypeError:                           # a short row (None) or a long one (a list of the rest)
        cells = "\x1f".join(v if isinstance(v, str) else "" if v is None else "\x1d".join(v) for v in row.values())
    data = (header + "\x1e" + cells).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


# Columns in which an export (Buttondown, Substack, Mailchimp) says the person has left,
# compared like the header aliases; a row that says so is not a subscriber.
LEFT_VALUES = {"type": {"unsubscribed", "cleaned", "bounced", "removed", "complained", "spam"},
               "subscribertype": {"unsubscribed", "cleaned", "bounced", "removed", "complained", "spam"},
               "status": {"unsubscribed", "cleaned", "bounced", "removed", "complained", "spam", "inactive"},
               "emaildisabled": {"true", "yes", "1"}}
LEFT_WHEN = ("unsubtime", "cleantime", "unsubscribedat", "unsubscribeddate", "bouncedat")


def _left_columns(columns: Sequence[str]) -> list[tuple[str, set[str] | None]]:
    """The header's columns that can say a person left: (column, the values that say so;
    None: any value, a date)."""
    found: list[tuple[str, set[str] | None]] = []
    for column in columns:
        key = re.sub(r"[\s_-]+", "", column.lower())
        if key in LEFT_VALUES or key in LEFT_WHEN:
            found.append((column, LEFT_VALUES.get(key)))
    return found


def _left(row: dict[str, str], columns: list[tuple[str, set[str] | None]]) -> str | None:
    """The column by which an export says this person left, or None."""
    for column, values in columns:
        text = str(row.get(column) or "").strip().lower()
        if text and (values is None or text in values):
            return column
    return None


def _subscribers(path: Path, rows: list[tuple[int, dict[str, str], int]], known: Callable[[list[str]], set[str]],
             problems: list[str], smtputf8: bool) -> list[Subscriber]:
    gone_columns = _left_columns([c for c in rows[0][1] if isinstance(c, str)]) if rows else []
    stored = known([_unquoted(row.get("email")) for _, row, _ in rows])
    subscribers = []
    left: dict[str, int] = {}
    for line, row, digest in rows:
        gone = _left(row, gone_columns) if gone_columns else None
        if gone is not None:
            left[gone] = left.get(gone, 0) + 1
            continue
        raw = _unquoted(row.get("email"))
        try:
            address = raw if raw in stored else check_address(raw, smtputf8)
        except ValueError as error:
            problems.append(f"{path} line {line}: {row.get('email')!r} is not a valid address ({error}); "
                            "fix or remove the row")
            continue
        name = _name(row)
        problem = name_problem(name)
        if problem:
            problems.append(f"{path} line {line}: {problem}; fix or remove the row")
            continue
        subscribers.append(Subscriber(address, name,
                              {k: v for k, v in row.items() if k not in ("email", "name") and k and v}, digest))
    for column, count in left.items():
        log.warning("%s: %d row%s not taken: the export's %s column says they left", path, count,
                    "" if count == 1 else "s", column)
    return subscribers


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet will not run as a formula: a leading =, +, -, @, tab or CR
    gets a ' in front (OWASP's advice for CSV injection). Addresses too (`=cmd|...@x` is
    a valid address); reading a list file takes that ' off again (`_unquoted`)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _unquoted(cell: str | None) -> str:
    """An address as exported (`'=x@example.org` keeps a spreadsheet from running it)."""
    text = (cell or "").strip()
    return text[1:] if text.startswith("'") and text[1:2] in ("=", "+", "-", "@") else text


def stamp(path: Path, last: FileStamp | None = None) -> tuple[FileStamp, Tail | None]:
    """The file's stamp, in one pass; and, when the file is the one `last` describes with
    rows appended (its first bytes hash as that file did, which ended a line), the tail
    to read."""
    digest = hashlib.sha256()
    before = last.size if last is not None and last.size else 0
    try:
        with path.open("rb") as handle:
            lines, end = _feed(handle, digest, before)
            head = digest.hexdigest()
            _feed(handle, digest, None)
            found = FileStamp(digest.hexdigest(), handle.tell())
    except FileNotFoundError:
        raise ListFileError(f"{path}: not found (removed while it was being read); run again once it is back") from None
    grown = last is not None and (found.size or 0) > before > 0 and head == last.sha256 and end == b"\n"
    return found, Tail(before, lines) if grown else None


def _feed(handle: BinaryIO, digest: Any, limit: int | None) -> tuple[int, bytes]:
    """Hash the next `limit` bytes (None: up to the end); their newlines and last byte."""
    lines, end, left = 0, b"", limit
    while left is None or left > 0:
        block = handle.read(1 << 20 if left is None else min(1 << 20, left))
        if not block:
            break
        digest.update(block)
        lines, end = lines + block.count(b"\n"), block[-1:]
        left = None if left is None else left - len(block)
    return lines, end


MAX_FILE_BYTES = 1 << 30      # 1 GiB: some twenty million rows of email and name


def check_file(path: Path, named_by: str = "[[lists]].file in the config file") -> None:
    """A list file is a regular file of bounded size (not a folder, a device, a pipe);
    `named_by` is what named it, for the fix."""
    try:
        found = path.stat()
    except FileNotFoundError:
        raise ListFileError(f"{path}: not found; create it with a header line 'email,name' "
                            f"or fix {named_by}") from None
    except OSError as error:
        raise ListFileError(f"{path}: cannot be read ({error.strerror}); check {named_by} and the file's "
                            "permissions") from None
    if not stat.S_ISREG(found.st_mode):
        kind = "a folder" if stat.S_ISDIR(found.st_mode) else "not a regular file"
        raise ListFileError(f"{path}: {kind}; {named_by} must name a CSV file (email, name)")
    if found.st_size > MAX_FILE_BYTES:
        raise ListFileError(f"{path}: {found.st_size:,} bytes, over the {MAX_FILE_BYTES:,} a list file may have; "
                            "split the list or keep the subscribers in the database")


def _check_encoding(path: Path, tail: Tail | None = None) -> None:
    """The whole file (or its tail) must be UTF-8 before anything is imported; read in blocks."""
    check_file(path)
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line = (tail.offset, tail.lines + 1) if tail else (0, 1)
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            while block := handle.read(1 << 16):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as error:
                    line += block[:error.start].count(b"\n")
                    raise ListFileError(f"{path} line {line}: not UTF-8 (byte {block[error.start]:#x}); "
                                        "save the file as UTF-8 and run again; nothing was imported") from None
                line += block.count(b"\n")
                offset += len(block)
            decoder.decode(b"", final=True)
    except FileNotFoundError:
        raise ListFileError(f"{path}: not found; create it with a header line 'email,name' "
                            "or fix [[lists]].file in the config file") from None
    except UnicodeDecodeError:
        raise ListFileError(f"{path} line {line}: not UTF-8 (the file ends mid-character); "
                            "save the file as UTF-8 and run again; nothing was imported") from None


RETIRE_SHARE = 0.10       # a sync may retire at most this share of the list...
RETIRE_MIN = 20           # ...unless it retires fewer than this many addresses


class MassRetireError(SendError):
    """A list sync would retire a large part of the list: a mistake until told otherwise."""


def sync(lists: ListStore, list_name: str, path: Path, now: datetime, allow_retire: bool = False,
         smtputf8: bool = True) -> SyncResult:
    """Make the list's subscribers from the file match it: add new, retire removed.

    One transaction: a sync that is refused or cut off changes nothing. Streams the file
    in chunks. By difference: each row is hashed, and rows whose hash is stored (read
    unchanged last time) are skipped; only new and changed rows are checked and merged,
    and subscribers whose row hash the file no longer has are the ones leaving. An unchanged
    file is not read; a file that only had rows appended since it was read whole (its
    first bytes are that file) has only those read, and nobody leaves. A file with a
    structural fault (an unterminated quote) is refused whole; a file with bad rows adds its good rows but
    retires nobody; a sync that would retire more than RETIRE_SHARE of the subscribers it
    found (and at least RETIRE_MIN) is refused unless allow_retire. Run it under the
    list's send lock (see actions): syncs of one list never overlap."""
    check_file(path)
    last = lists.last_file(list_name)
    found, tail = stamp(path, last)
    if last is not None and found.sha256 == last.sha256:
        if last.size is None:                 # synced before sizes were kept
            lists.remember_size(list_name, found)
        return SyncResult()
    try:
        return _sync(lists, list_name, path, now, allow_retire, smtputf8, found, tail)
    except _NamedAgain:                       # an appended row repeats a subscriber's address: read it all
        return _sync(lists, list_name, path, now, allow_retire, smtputf8, found, None)


class _NamedAgain(Exception):
    """A row appended to the file names an address an earlier row of it has."""


def _sync(lists: ListStore, list_name: str, path: Path, now: datetime, allow_retire: bool, smtputf8: bool,
          found: FileStamp, tail: Tail | None) -> SyncResult:
    result = SyncResult()
    with lists.syncing(list_name) as run:
        gone = None if tail else run.stored_hashes()     # rows read last time; those the file still has go
        for chunk in read_chunks(path, result.problems, smtputf8=smtputf8, skip=gone, tail=tail):
            if tail is not None and run.has_from_file([m.key for m in chunk]):
                raise _NamedAgain                         # undone with the transaction
            done = run.merge(chunk, now)
            crash.point("sync.chunk")
            result.added += done.added
            result.updated += done.updated
        if result.problems:       # read again next time, to report them again; nobody retired meanwhile
            run.finish(None, now, retire=False)
            result.problems.append(f"{path}: nobody was taken off {list_name} while the file has bad rows; "
                                   "fix them and the next sync applies removals")
            return result
        kept = found if _unchanged_since(path, found) else None
        if tail is not None:              # only rows appended: nobody left the file
            run.finish(kept, now, retire=False)
        else:
            _check_retire(run, gone or set(), result.added, list_name, path, allow_retire)
            result.retired = run.finish(kept, now, gone=gone)
    crash.point("sync.finished")
    return result


def _check_retire(run: ListSync, gone: set[int], added: int, list_name: str, path: Path, allow: bool) -> None:
    """Refuse (MassRetireError) a sync that would retire most of the list, unless allowed."""
    if allow:
        return
    leaving = run.leaving(gone)
    if leaving >= RETIRE_MIN:                     # counted only then: it costs a scan
        _refuse_mass_retire(leaving, run.from_file() - added, list_name, path, allow)


def _unchanged_since(path: Path, found: FileStamp) -> bool:
    """The file still has the size it was hashed at: what was read is what the stamp says
    (otherwise the next sync reads it whole again)."""
    try:
        return path.stat().st_size == found.size
    except OSError:
        return False


def _refuse_mass_retire(leaving: int, on_file: int, list_name: str, path: Path, allow: bool) -> None:
    if allow or leaving < RETIRE_MIN or leaving <= RETIRE_SHARE * on_file:
        return
    raise MassRetireError(f"{path}: this sync would take {leaving} of the {on_file} subscribers from the file off "
                          f"{list_name} (more than {RETIRE_SHARE:.0%}); nothing was changed. If the file is right, "
                          f"run `digest subscribers list {list_name} --sync --allow-retire`, otherwise restore it")


def _check_structure(path: Path, tail: Tail | None = None) -> str:
    """The whole file (or its tail) parses as CSV (quotes closed, fields of sane size)
    before anything is applied; otherwise ListFileError with the line where the broken
    record starts. Returns the file's delimiter (comma, semicolon or tab, sniffed from
    the header)."""
    _check_encoding(path, tail)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        delimiter = _delimiter(handle.readline())
    with _text_from(path, tail) if tail else path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, strict=True, delimiter=delimiter)
        start = 1 + (tail.lines if tail else 0)
        try:
            for _ in reader:
                start = reader.line_num + 1 + (tail.lines if tail else 0)
        except csv.Error as error:
            raise ListFileError(f"{path} line {start}: the file is not valid CSV ({error}; often a quote "
                                "that is never closed); fix that line, nothing was changed") from None
    return delimiter
