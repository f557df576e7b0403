"""List sync by difference (issue 14): only new and changed rows are checked and written,
members whose row is gone leave, and the fast address check agrees with email-validator.
Speed itself is measured in bench/sync.py, not here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.db.tables import subscribers
from digest.send.subscribers import _check_whole, check_address, sync

NOW = datetime(2026, 11, 30, 9, tzinfo=UTC)
ROWS = [f"reader{n:03d}@mail{n % 4}.example.org,Reader {n},Leeds" for n in range(60)]


def write(path, rows: list[str], header: str = "email,name,city") -> None:
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")


def state(db) -> dict[str, tuple]:
    with db.engine.connect() as connection:
        rows = connection.execute(sa.select(subscribers.c.email, subscribers.c.name, subscribers.c.active,
                                            subscribers.c.synced, subscribers.c.row_hash)).all()
    return {r.email: (r.name, r.active, r.synced, r.row_hash) for r in rows}


# ------------------------------------------------------------------ the fast address check

local_parts = st.one_of(st.from_regex(r"[A-Za-z0-9._%+!#'=-]{1,70}", fullmatch=True),
                        st.sampled_from(["WWW", "PostMaster", "Abuse", "Hostmaster", "NOC", "Security"]))
domains = st.sampled_from(["example.org", "EXAMPLE.org", "mail.co.uk", "xn--bcher-kva.de", "bücher.de", "localhost",
                           "a..b.org", "-x.org", "x", "123.45.67.89", "[127.0.0.1]", "ex_ample.org", "e.o", ""])


@settings(max_examples=1500, deadline=None)
@given(st.one_of(st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains), st.emails(),
                 st.text(max_size=60)))
def test_the_fast_check_agrees_with_email_validator(address):
    try:
        expected = _check_whole(address.strip(), True)
    except ValueError as error:
        with pytest.raises(ValueError) as caught:
            check_address(address)
        assert str(caught.value) == str(error)                      # the same reason, word for word
        return
    assert check_address(address) == expected


# ------------------------------------------------------------------ sync by difference

def test_a_changed_row_is_the_only_one_written(tmp_path, db):
    path = tmp_path / "weekly.csv"
    write(path, ROWS)
    assert sync(db.lists, "weekly", path, NOW).added == 60
    before = state(db)
    assert all(row_hash is not None for *_, row_hash in before.values())

    changed = ROWS.copy()
    changed[7] = "reader007@mail3.example.org,Reader Seven,Leeds"
    write(path, changed[::-1])                          # reordered too: order is not a change
    result = sync(db.lists, "weekly", path, NOW + timedelta(days=1))
    assert (result.added, result.updated, result.retired) == (0, 1, 0)
    after = state(db)
    assert after["reader007@mail3.example.org"][0] == "Reader Seven"
    untouched = [email for email in before if email != "reader007@mail3.example.org"]
    assert all(after[email] == before[email] for email in untouched)   # not even their generation moved


def test_a_row_taken_out_leaves_and_one_put_back_returns(tmp_path, db):
    path = tmp_path / "weekly.csv"
    write(path, ROWS)
    sync(db.lists, "weekly", path, NOW)
    write(path, ROWS[:-1])
    assert sync(db.lists, "weekly", path, NOW + timedelta(days=1)).retired == 1
    assert state(db)["reader059@mail3.example.org"][1] is False
    write(path, ROWS)
    result = sync(db.lists, "weekly", path, NOW + timedelta(days=2))
    assert (result.added, result.updated, result.retired) == (0, 1, 0)
    assert state(db)["reader059@mail3.example.org"][1] is True
    assert db.lists.count("weekly") == 60


def test_a_duplicated_row_and_a_renamed_column_are_read_right(tmp_path, db):
    path = tmp_path / "weekly.csv"
    write(path, ROWS)
    sync(db.lists, "weekly", path, NOW)
    write(path, ROWS + [ROWS[0]])
    assert sync(db.lists, "weekly", path, NOW + timedelta(days=1)).retired == 0
    write(path, ROWS, header="email,name,town")                       # every row's extra changes
    result = sync(db.lists, "weekly", path, NOW + timedelta(days=2))
    assert (result.updated, result.retired) == (60, 0)
    assert db.lists.count("weekly") == 60


def test_members_synced_before_row_hashes_are_hashed_or_retired_on_the_next_sync(tmp_path, db):
    path = tmp_path / "weekly.csv"
    write(path, ROWS)
    sync(db.lists, "weekly", path, NOW)
    with db.engine.begin() as connection:               # as after upgrading from revision 0005
        connection.execute(subscribers.update().values(row_hash=None))
        connection.execute(sa.text("DELETE FROM list_files"))
    write(path, ROWS[:55])
    result = sync(db.lists, "weekly", path, NOW + timedelta(days=1))
    assert (result.added, result.retired) == (0, 5)
    assert sum(active for _, active, _, row_hash in state(db).values() if row_hash is not None) == 55


def test_a_sync_refused_for_retiring_too_many_changes_nothing(tmp_path, db):
    path = tmp_path / "weekly.csv"
    write(path, ROWS)
    sync(db.lists, "weekly", path, NOW)
    before = state(db)
    write(path, ROWS[:20])
    from digest.send.subscribers import MassRetireError
    with pytest.raises(MassRetireError):
        sync(db.lists, "weekly", path, NOW + timedelta(days=1))
    assert state(db) == before


def test_a_first_import_keeps_the_first_row_of_a_duplicated_address_and_counts_once(tmp_path, db):
    path = tmp_path / "weekly.csv"
    rows = [f"r{n:04d}@example.org,First {n},x" for n in range(2500)]
    rows.insert(2200, "r0003@example.org,Later Three,y")          # a later chunk repeats an early address
    write(path, rows)
    result = sync(db.lists, "weekly", path, NOW)
    assert result.added == 2500 and db.lists.count("weekly") == 2500
    assert state(db)["r0003@example.org"][0] == "First 3"


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=120) | st.text(alphabet=" ab\t\u00a0\u202e\u2028", max_size=30))
def test_the_fast_path_of_clean_name_gives_what_the_full_pass_gives(text):
    import re
    import unicodedata

    from digest.names import _BIDI, MAX_NAME, clean_name
    kept = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text if c not in _BIDI)
    assert clean_name(text) == re.sub(r"\s+", " ", kept).strip()[:MAX_NAME]
