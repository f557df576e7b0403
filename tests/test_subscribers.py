"""List files and membership: bad rows, broken files, duplicates, suppression wins."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from digest.models import EVERY_LIST, Member, Origin, Reason
from digest.subscribers import ListFileError, read_csv, sync

NOW = datetime(2017, 11, 1, tzinfo=UTC)


def write(tmp_path, text: str | bytes, name: str = "weekly.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_bad_rows_are_reported_with_file_and_line_and_skipped(tmp_path):
    path = write(tmp_path, "email,name,town\nok@example.org,Ok,Leeds\nnot-an-address,Bad,\n"
                           "also@bad@example.org,,\n\"quoted@example.org\",\"Smith, Jo\",Hull\n")
    result = read_csv(path)
    assert [m.email for m in result.members] == ["ok@example.org", "quoted@example.org"]
    assert result.members[1].name == "Smith, Jo" and result.members[1].extra == {"town": "Hull"}
    assert len(result.problems) == 2
    assert result.problems[0].startswith(f"{path} line 3: 'not-an-address' is not a valid address")
    assert result.problems[1].startswith(f"{path} line 4:")


def test_spellings_of_one_mailbox_are_merged(tmp_path):
    """One identity per mailbox: case in the local part or the domain, and a domain in
    Unicode or punycode, do not make a second subscriber (the first spelling is kept)."""
    result = read_csv(write(tmp_path, "email\nJo@Example.ORG\nJo@example.org\njo@example.org\n"
                                      "josé@Bücher.de\nJOSÉ@xn--bcher-kva.de\n"))
    assert [m.email for m in result.members] == ["Jo@example.org", "josé@bücher.de"]
    assert [m.key for m in result.members] == ["jo@example.org", "josé@xn--bcher-kva.de"]


def test_broken_encoding_names_the_line_and_imports_nothing(tmp_path, db):
    path = write(tmp_path, b"email,name\na@example.org,Ann\nb@example.org,Bj\xf6rn\n")
    with pytest.raises(ListFileError, match=r"weekly.csv line 3: not UTF-8 .*nothing was imported"):
        sync(db.lists, "weekly", path, NOW)
    assert db.lists.count("weekly") == 0


def test_missing_email_column(tmp_path):
    with pytest.raises(ListFileError, match=r"line 1: no 'email' column \(found: address, name\)"):
        read_csv(write(tmp_path, "address,name\na@example.org,Ann\n"))


def test_missing_file(tmp_path):
    with pytest.raises(ListFileError, match="not found; create it with a header line"):
        read_csv(tmp_path / "none.csv")


def test_sync_adds_and_retires_file_members_but_keeps_others(tmp_path, db):
    lists = db.lists
    path = write(tmp_path, "email,name\na@example.org,A\nb@example.org,B\n")
    assert sync(lists, "weekly", path, NOW).added == 2
    lists.merge("weekly", [Member("cli@example.org")], Origin.CLI, NOW)
    write(tmp_path, "email,name\nb@example.org,Bee\nc@example.org,C\n")
    result = sync(lists, "weekly", path, NOW)
    assert (result.added, result.updated, result.retired) == (1, 1, 1)
    assert sorted(r.email for r in lists.members("weekly")) == ["b@example.org", "c@example.org", "cli@example.org"]


def test_suppression_wins_over_the_file(tmp_path, db):
    lists = db.lists
    path = write(tmp_path, "email\na@example.org\nb@example.org\n")
    sync(lists, "weekly", path, NOW)
    lists.suppress("a@example.org", EVERY_LIST, Reason.BOUNCED, "550 mailbox unavailable", NOW)
    lists.remove("weekly", "B@EXAMPLE.ORG".lower(), NOW)
    sync(lists, "weekly", path, NOW)
    assert list(lists.members("weekly")) == []
    assert {r["email"]: r["reason"] for r in lists.listing("weekly")} == {"a@example.org": "bounced",
                                                                         "b@example.org": "removed"}


def test_members_are_streamed_in_batches(tmp_path, db):
    lists = db.lists
    lists.merge("weekly", [Member(f"r{n}@example.org") for n in range(25)], Origin.IMPORT, NOW)
    assert [r.email for r in lists.members("weekly", batch=7)] == [f"r{n}@example.org" for n in range(25)]
