"""Subscriber lists: the editor's CSV files and the membership held in the database.

The CSV (email, name, more columns kept) is what the editor edits; the database holds
who is a member, and a suppression table (unsubscribed, bounced, complained) that
always wins over the file. Addresses are checked for syntax only (no DNS).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from .db.lists import ListStore
from .errors import DigestError
from .models import Member, Origin, SyncResult

log = logging.getLogger(__name__)

class ListFileError(DigestError):
    """A subscriber file cannot be read at all (encoding, header)."""


@dataclass
class ReadResult:
    members: list[Member]
    problems: list[str]                 # one line each: file, line, what to do


def check_address(address: str) -> str:
    """The normalised address, or ValueError with the reason."""
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValueError(str(error)) from None


CHUNK = 1000


def read_csv(path: Path) -> ReadResult:
    """Read a whole list file: bad rows are reported (file and line) and skipped; a
    file that cannot be read at all (encoding, no email column) raises ListFileError."""
    members: dict[str, Member] = {}
    problems: list[str] = []
    for chunk in read_chunks(path, problems):
        for member in chunk:
            members.setdefault(member.key, member)
    return ReadResult(list(members.values()), problems)


def read_chunks(path: Path, problems: list[str], known: Callable[[list[str]], set[str]] = lambda raw: set(),
                size: int = CHUNK) -> Iterator[list[Member]]:
    """The file's members, CHUNK rows at a time; memory does not grow with the file.
    Addresses `known(raw)` says are already stored as written skip the syntax check."""
    _check_encoding(path)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        reader.fieldnames = _columns(path, reader.fieldnames)
        rows: list[tuple[int, dict[str, str]]] = []
        for row in reader:
            rows.append((reader.line_num, row))
            if len(rows) == size:
                yield _members(path, rows, known, problems)
                rows = []
        if rows:
            yield _members(path, rows, known, problems)


def _columns(path: Path, names: Sequence[str] | None) -> list[str]:
    columns = [c.strip().lower() for c in (names or [])]
    if "email" not in columns:
        raise ListFileError(f"{path} line 1: no 'email' column (found: {', '.join(columns) or 'nothing'}); "
                            "the first line must name the columns, e.g. email,name")
    return columns


def _members(path: Path, rows: list[tuple[int, dict[str, str]]], known: Callable[[list[str]], set[str]],
             problems: list[str]) -> list[Member]:
    stored = known([(row.get("email") or "").strip() for _, row in rows])
    members = []
    for line, row in rows:
        raw = (row.get("email") or "").strip()
        try:
            address = raw if raw in stored else check_address(raw)
        except ValueError as error:
            problems.append(f"{path} line {line}: {row.get('email')!r} is not a valid address ({error}); "
                            "fix or remove the row")
            continue
        members.append(Member(address, (row.get("name") or "").strip(),
                              {k: v for k, v in row.items() if k not in ("email", "name") and k and v}))
    return members


def _file_hash(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except FileNotFoundError:
        return None


def _check_encoding(path: Path) -> None:
    """The whole file must be UTF-8 before anything is imported; read in blocks."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line = 0, 1
    try:
        with path.open("rb") as handle:
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
                            "or fix [[lists]].file in config.toml") from None
    except UnicodeDecodeError:
        raise ListFileError(f"{path} line {line}: not UTF-8 (the file ends mid-character); "
                            "save the file as UTF-8 and run again; nothing was imported") from None


def sync(lists: ListStore, list_name: str, path: Path, now: datetime) -> SyncResult:
    """Make the list's file members match the file: add new, retire removed.

    Streams the file in chunks; the generation number marks who the file still
    names, so memory does not grow with the list. An unchanged file is not read."""
    result = SyncResult()
    digest = _file_hash(path)
    if digest is not None and digest == lists.last_hash(list_name):
        return result
    generation = lists.next_generation(list_name)
    known = lambda raw: lists.stored_as_written(list_name, raw)  # noqa: E731
    for chunk in read_chunks(path, result.problems, known):
        done = lists.merge(list_name, chunk, Origin.FILE, now, generation)
        result.added += done.added
        result.updated += done.updated
    # a file with bad rows is read again next time, to report them again
    result.retired = lists.finish_sync(list_name, generation, None if result.problems else digest, now)
    return result
