"""The ledger's writes at scale (issue 14): a batch's status changes are one statement on
PostgreSQL (an array, not a thousand parameters), change the row in place there (no
index holds the status: HOT updates), and a provider's event finds its row by index.
Speed itself is measured in bench/deliver.py, not here."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from digest.db import Database
from digest.db.ledger import _update
from digest.db.tables import deliveries, editions
from digest.models import DeliveryStatus

NOW = datetime(2026, 11, 30, 9, tzinfo=UTC)
LEASE = NOW + timedelta(seconds=60)
ROWS = 1200


def _edition(db: Database, rows: int = ROWS) -> tuple[int, list[int]]:
    with db.engine.begin() as connection:
        edition_id = connection.execute(editions.insert().values(
            list_name="weekly", since=NOW, until=NOW, subject="s", html="h", text="t", tokens="{}", web_url="u",
            status="sending", created_at=NOW)).inserted_primary_key[0]
        connection.execute(deliveries.insert(), [
            {"edition_id": edition_id, "subscriber_id": n, "email": f"r{n}@example.org",
             "email_key": f"r{n}@example.org", "name": "", "status": "pending", "attempts": 0} for n in range(rows)])
        ids = connection.execute(sa.select(deliveries.c.id).where(deliveries.c.edition_id == edition_id)
                                 .order_by(deliveries.c.id)).scalars().all()
    return edition_id, list(ids)


def _statements(db: Database) -> list[str]:
    seen: list[str] = []
    sa.event.listen(db.engine, "before_cursor_execute", lambda conn, cursor, sql, *args: seen.append(sql))
    return seen


def test_a_batch_changes_status_in_as_few_statements_as_the_database_allows(db: Database) -> None:
    edition_id, ids = _edition(db)
    seen = _statements(db)
    db.ledger.mark(ids[:1100], DeliveryStatus.IN_FLIGHT, NOW)
    updates = [sql for sql in seen if sql.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == (1 if db.engine.dialect.name == "postgresql" else 3)      # SQLite: 500 a statement
    counts = {s.value: n for s, n in db.ledger.counts(edition_id).items()}
    assert counts == {"sending": 1100, "pending": 100}
    assert [r.id for r in db.ledger.claim(edition_id, 1000, "me", NOW, LEASE)] == ids[1100:]


def test_pending_rows_say_which_addresses_were_suppressed_since_the_freeze(db: Database) -> None:
    from digest.models import Reason
    edition_id, ids = _edition(db)
    for key, where in (("r5@example.org", "weekly"), ("r999@example.org", "*"), ("r7@example.org", "monthly")):
        db.lists.suppress(key, where, Reason.UNSUBSCRIBED, "", NOW)
    rows = db.ledger.claim(edition_id, 1000, "me", NOW, LEASE)
    assert len(rows) == 1000
    assert {r.email for r in rows if r.suppressed} == {"r5@example.org", "r999@example.org"}


def test_a_status_change_on_postgresql_rewrites_no_index(fresh_pg_url: str) -> None:
    """Every status change of a batch is a HOT update: the row changes in place, and no
    index entry is written (the work that made PostgreSQL sends twice as slow as SQLite's).
    With an index on the status, or pages filled to the brim, none would be."""
    with Database.open(fresh_pg_url) as db:
        _, ids = _edition(db)
        with db.engine.begin() as connection:
            _update(connection, ids, status="sending", updated_at=NOW)
            first = connection.execute(sa.text(
                "SELECT pg_stat_get_xact_tuples_hot_updated('deliveries'::regclass)")).scalar_one()
        with db.engine.begin() as connection:
            _update(connection, ids, status="accepted", message_id="m", updated_at=NOW)
            second = connection.execute(sa.text(
                "SELECT pg_stat_get_xact_tuples_hot_updated('deliveries'::regclass)")).scalar_one()
        assert first >= 0.9 * ROWS and second >= 0.9 * ROWS     # a page's last row may not fit: 94% here


def test_a_provider_event_finds_its_row_by_index_on_postgresql(fresh_pg_url: str) -> None:
    """A webhook event names the edition and the address: with a million rows in the
    edition it must not read them all."""
    with Database.open(fresh_pg_url) as db:
        _edition(db)
        edition_id, _ = _edition(db)
        with db.engine.begin() as connection:
            connection.execute(sa.text("ANALYZE deliveries"))
            statement = deliveries.update().where(deliveries.c.edition_id == edition_id,
                                                  deliveries.c.email_key == "r7@example.org").values(event="open")
            compiled = statement.compile(connection, compile_kwargs={"literal_binds": True})
            plan = "\n".join(connection.execute(sa.text(f"EXPLAIN {compiled}")).scalars())
    assert "ix_deliveries_address" in plan, plan


def test_nothing_to_change_is_no_statement(db: Database) -> None:
    seen = _statements(db)
    with db.engine.begin() as connection:
        _update(connection, [], status="sending")
    assert not [sql for sql in seen if sql.lstrip().upper().startswith("UPDATE")]


def test_two_senders_never_take_the_same_row_and_a_lapsed_lease_frees_its_rows(db: Database) -> None:
    """Eight workers claim batches of 50 at once (threads; on PostgreSQL each its own
    connection and SKIP LOCKED): every row is taken once. A sender's rows are its own
    until its lease runs out; then another takes them; a finished row is never taken."""
    edition_id, ids = _edition(db, 1000)
    taken: dict[str, list[int]] = {}
    barrier = threading.Barrier(8)

    def worker(name: str) -> None:
        barrier.wait()
        while rows := db.ledger.claim(edition_id, 50, name, NOW, LEASE):
            taken.setdefault(name, []).extend(r.id for r in rows)
            db.ledger.mark([r.id for r in rows], DeliveryStatus.ACCEPTED, NOW)
    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for rows in taken.values() for i in rows]
    assert sorted(every) == ids and len(set(every)) == len(every) and len(taken) > 1
    second, more = _edition(db, 10)
    assert len(db.ledger.claim(second, 6, "dead", NOW, NOW + timedelta(seconds=5))) == 6
    assert [r.id for r in db.ledger.claim(second, 10, "alive", NOW, LEASE)] == more[6:]       # held: skipped
    later = NOW + timedelta(seconds=6)                                                          # the lease ran out
    assert [r.id for r in db.ledger.claim(second, 10, "alive", later, later + timedelta(seconds=60))] == more[:6]
    assert db.ledger.in_flight(second, later) is not None and db.ledger.in_flight(second, later, "alive") is None


def test_a_sender_that_stalled_past_its_lease_cannot_mark_sending_what_another_took(db: Database) -> None:
    """The point of no return is taken only on rows still pending and still the sender's
    own: a sender that wakes after another took its rows sends none of them (and cannot
    mark them suppressed or pending either); its own rows still go."""
    edition_id, ids = _edition(db, 10)
    stalled = [r.id for r in db.ledger.claim(edition_id, 6, "stalled", NOW, NOW + timedelta(seconds=5))]
    later = NOW + timedelta(seconds=6)
    taken = [r.id for r in db.ledger.claim(edition_id, 4, "awake", later, later + timedelta(seconds=60))]
    assert taken == stalled[:4]
    assert sorted(db.ledger.record([], taken, later, holder="awake")) == taken       # the new holder sends them
    db.ledger.mark(taken, DeliveryStatus.ACCEPTED, later)
    assert sorted(db.ledger.record([], stalled, later, holder="stalled")) == stalled[4:]   # only its own
    db.ledger.mark(taken, DeliveryStatus.SUPPRESSED, later, holder="stalled")       # not its own: unchanged
    db.ledger.mark(stalled, DeliveryStatus.PENDING, later, holder="stalled")        # its two did not go
    counts = {s.value: n for s, n in db.ledger.counts(edition_id).items()}
    assert counts == {"accepted": 4, "pending": 6}                                  # its two, given back; four others
