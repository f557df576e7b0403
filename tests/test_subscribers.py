"""List files and membership: bad rows, broken files, duplicates, suppression wins."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from digest.models import EVERY_LIST, Origin, Reason, Subscriber
from digest.send.subscribers import ListFileError, read_csv, sync

NOW = datetime(2017, 11, 1, tzinfo=UTC)


def write(tmp_path, text: str | bytes, name: str = "weekly.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_bad_rows_are_reported_with_file_and_line_and_skipped(tmp_path):
    path = write(tmp_path, "email,name,town\nok@example.org,Ok,Leeds\nnot-an-address,Bad,\n"
                           "also@bad@example.org,,\n\"quoted@example.org\",\"Smith, Jo\",Hull\n")
    result = read_csv(path)
    assert [m.email for m in result.subscribers] == ["ok@example.org", "quoted@example.org"]
    assert result.subscribers[1].name == "Smith, Jo" and result.subscribers[1].extra == {"town": "Hull"}
    assert len(result.problems) == 2
    assert result.problems[0].startswith(f"{path} line 3: 'not-an-address' is not a valid address")
    assert result.problems[1].startswith(f"{path} line 4:")


def test_spellings_of_one_mailbox_are_merged(tmp_path):
    """One identity per mailbox: case in the local part or the domain, and a domain in
    Unicode or punycode, do not make a second subscriber (the first spelling is kept)."""
    result = read_csv(write(tmp_path, "email\nJo@Example.ORG\nJo@example.org\njo@example.org\n"
                                      "josé@Bücher.de\nJOSé@xn--bcher-kva.de\nJOSÉ@bücher.de\n"))
    assert [m.email for m in result.subscribers] == ["Jo@example.org", "josé@bücher.de", "JOSÉ@bücher.de"]
    assert [m.key for m in result.subscribers] == ["jo@example.org", "josé@xn--bcher-kva.de", "josÉ@xn--bcher-kva.de"]


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
    lists.merge("weekly", [Subscriber("cli@example.org")], Origin.CLI, NOW)
    write(tmp_path, "email,name\nb@example.org,Bee\nc@example.org,C\n")
    result = sync(lists, "weekly", path, NOW)
    assert (result.added, result.updated, result.retired) == (1, 1, 1)
    assert sorted(r.email for r in lists.active("weekly")) == ["b@example.org", "c@example.org", "cli@example.org"]


def test_suppression_wins_over_the_file(tmp_path, db):
    lists = db.lists
    path = write(tmp_path, "email\na@example.org\nb@example.org\n")
    sync(lists, "weekly", path, NOW)
    lists.suppress("a@example.org", EVERY_LIST, Reason.BOUNCED, "550 mailbox unavailable", NOW)
    lists.remove("weekly", "B@EXAMPLE.ORG".lower(), NOW)
    sync(lists, "weekly", path, NOW)
    assert list(lists.active("weekly")) == []
    assert {r["email"]: r["reason"] for r in lists.listing("weekly")} == {"a@example.org": "bounced",
                                                                         "b@example.org": "removed"}


def test_members_are_streamed_in_batches(tmp_path, db):
    lists = db.lists
    lists.merge("weekly", [Subscriber(f"r{n}@example.org") for n in range(25)], Origin.IMPORT, NOW)
    assert [r.email for r in lists.active("weekly", batch=7)] == [f"r{n}@example.org" for n in range(25)]


def _addresses(prefix: str, count: int, domain: str = "example.org") -> str:
    return "email,name\n" + "".join(f"{prefix}{n}@{domain},N\n" for n in range(count))


def test_a_file_of_strangers_replacing_the_list_is_refused_and_changes_nothing(db, tmp_path):
    """The guard counts against the members there were, not against the new file: 200
    readers replaced by 2,000 other addresses is 100% retired, refused, nothing applied."""
    from digest.send.subscribers import MassRetireError
    path = write(tmp_path, _addresses("old", 200))
    sync(db.lists, "weekly", path, NOW)
    write(tmp_path, _addresses("wrong", 2000, "other.example"))
    with pytest.raises(MassRetireError, match="would take 200 of the 200 subscribers"):
        sync(db.lists, "weekly", path, NOW)
    rows = db.lists.listing("weekly")
    assert len(rows) == 200 and all(r["active"] and r["email"].startswith("old") for r in rows)
    write(tmp_path, _addresses("old", 200))                 # the right file back: all as it was
    assert sync(db.lists, "weekly", path, NOW).added == 0
    assert db.lists.count("weekly") == 200


def test_a_refused_sync_mails_nobody_it_would_have_added(tmp_path, db_url):
    from digest.actions import send_edition, sync_list

    from .support.world import World
    world = World(tmp_path, db_url, 100)
    sync_list(world.settings, world.db, world.weekly, NOW)              # the 100 are stored
    world.write_list([f"wrong{n}@other.example" for n in range(30)])    # the editor saved the wrong file
    report = send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    assert sum(report.counts.values()) == 100                           # the 100 stored, not 130
    assert any("the list was not synced" in p for p in report.problems)
    world.close()


def test_a_stored_address_no_header_can_carry_is_refused_alone(tmp_path, db_url):
    """A row written before addresses were checked (or by hand) cannot stop a send."""
    from digest.actions import send_edition

    from .support.world import World
    world = World(tmp_path, db_url, 4)
    world.db.lists.merge("weekly", [Subscriber("zz2@bücher..de", "D")], Origin.CLI, NOW)
    report = send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    assert report.counts == {"accepted": 4, "refused": 1}
    world.close()
