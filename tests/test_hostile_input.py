"""Hostile input never becomes a header, a second recipient, a broken list or a formula:
names, subjects, addresses, settings, list files, the CLI, the subscribe form, a send."""

from __future__ import annotations

import csv
import email
import email.policy
import re
from collections import Counter
from datetime import UTC, datetime
from email.headerregistry import Address
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import config
from digest.actions import send_edition
from digest.cli import cli
from digest.db import Database
from digest.db.tables import deliveries
from digest.errors import ConfigError
from digest.models import DeliveryStatus, Edition, Origin, Subscriber, ascii_domain, email_key, wire_address
from digest.oneline import clean_name, name_problem
from digest.send.message import HeaderInjection, _header, check_headers, recipient, wire
from digest.send.subscribers import ListFileError, read_csv, sync
from digest.web import create_app

from .support.sendgrid_server import SendGridStandIn
from .support.world import World

NOW = datetime(2017, 11, 1, 9, 0, tzinfo=UTC)
ORIGIN = Address("On Probation digest", "digest", "example.org")
EXPECTED_HEADERS = ["From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe",
                    "List-Unsubscribe-Post", "MIME-Version", "Content-Type"]
# A confirmation goes before anyone is subscribed: nothing to unsubscribe from (issue 22)
# ... and, as every letter, Auto-Submitted (RFC 3834: no auto-responder answers it)
CONFIRMATION_HEADERS = ["From", "To", "Subject", "Date", "Message-ID", "List-Id", "Auto-Submitted", "MIME-Version",
                        "Content-Type"]
BREAKS = "\r\n\x00\x0b\x0c\x1c\x1d\x1e\x7f\x85\u2028\u2029"
LINE_BREAKS = "\r\n\x85\u2028\u2029"
INTERNATIONAL = ["josé@example.org", "jose@xn--bcher-kva.de", "JOSE@Bücher.DE"]
IDN_DOMAINS = ["bücher.de", "BÜCHER.DE", "xn--bcher-kva.de", "münchen.example", "пример.рф", "例え.jp"]
SETTINGS = config.from_dict({"lists": [{"name": "weekly", "file": "weekly.csv"}]})


def edition(subject: str = "On Probation: the best of the discussion") -> Edition:
    return Edition("weekly", NOW, NOW, subject, "<p>[[g]]</p><p>[[u]]</p>", "[[tg]]\n[[tu]]\n",
                   "http://localhost:8000/archive/weekly/2017-10-25",
                   {"greeting": "[[g]]", "unsubscribe_url": "[[u]]"},
                   {"greeting": "[[tg]]", "unsubscribe_url": "[[tu]]"})


def parse(data: bytes, smtputf8: bool) -> email.message.EmailMessage:
    """A wire message as a mail client reads it (a UTF-8 header block only with SMTPUTF8)."""
    if smtputf8:
        return email.message_from_string(data.decode("utf-8"), policy=email.policy.SMTPUTF8)
    return email.message_from_bytes(data, policy=email.policy.default)


def head_lines(data: bytes) -> list[bytes]:
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.count(b"\n") == head.count(b"\r\n") and head.count(b"\r") == head.count(b"\r\n")
    return head.split(b"\r\n")


def assert_one_recipient(data: bytes, to_address: str, smtputf8: bool,
                         headers: list[str] = EXPECTED_HEADERS) -> email.message.EmailMessage:
    lines = head_lines(data)
    assert [line.split(b":", 1)[0].decode() for line in lines] == headers
    message = parse(data, smtputf8)
    assert list(message.keys()) == headers
    assert message.get_all("Bcc") is None and message.get_all("Cc") is None
    assert len(message.get_all("To")) == 1
    addresses = message["To"].addresses
    assert len(addresses) == 1 and addresses[0].addr_spec == to_address
    assert not any(c in addresses[0].display_name for c in LINE_BREAKS)
    return message


# ------------------------------------------------------------------ 1. names never reach a header raw

HOSTILE_PIECES = ["\r\nBcc: victim@example.net", "\nBcc: x@y", "Bcc: x@y", "\r\n\r\n<h1>locked</h1>",
                  "\u2028Cc: a@b", "\x85To: z@example.com", "\x00", ":", '"', "<x@y>", ",", "\\", "=?utf-8?q?x?="]
names = st.one_of(
    st.text(alphabet=st.one_of(st.sampled_from(list("\r\n\x00\u2028\u2029\x85:<>\",\\@ \t")),
                               st.characters(codec="utf-8")), max_size=80),
    st.builds(lambda a, piece, b: a + piece + b, st.text(max_size=12), st.sampled_from(HOSTILE_PIECES),
              st.text(max_size=12)),
)


@settings(max_examples=200, deadline=None)
@given(name=names, address=st.sampled_from(["reader@example.org", "josé@example.org", "ann@bücher.de"]))
def test_no_name_can_add_a_header_or_a_recipient(name, address):
    to = recipient(SETTINGS.send_settings(), key="key", list_name="weekly", delivery_id=7, email=address,
                   email_key=email_key(address), name=name, edition_id=3)
    assert to.name == clean_name(name) and name_problem(to.name) is None
    assert not any(c in to.values["greeting"] for c in LINE_BREAKS)
    data, message_id = wire(edition(), ORIGIN, to, NOW)
    message = assert_one_recipient(data, wire_address(address)[0], to.smtputf8)
    assert message["Message-ID"] == message_id


@settings(max_examples=300, deadline=None)
@given(name=names)
def test_a_name_reaches_the_html_part_escaped_and_the_text_part_as_it_is(name):
    """The substitution's fast path (no escaping for a value without & < > " ') escapes
    exactly what markupsafe would."""
    from markupsafe import escape
    values = {"greeting": name, "unsubscribe_url": "https://x.example/u?a=1&b=<2>"}
    html, text = edition().personalise(values)
    assert html == f"<p>{escape(name)}</p><p>{escape(values['unsubscribe_url'])}</p>"
    assert text == f"{name}\n{values['unsubscribe_url']}\n"


# ------------------------------------------------------------------ 2. a line break in a header is refused

def test_a_subject_with_a_line_break_is_refused_and_nothing_is_written(tmp_path):
    to = recipient(SETTINGS.send_settings(), key="key", list_name="weekly", delivery_id=7, email="reader@example.org",
                   email_key="reader@example.org", name="Reader", edition_id=3)
    for subject in ("Weekly\r\nBcc: victim@example.net", "Weekly\nBcc: x@y", "Weekly\u2028Bcc: x@y"):
        with pytest.raises(HeaderInjection, match="Subject"):
            wire(edition(subject), ORIGIN, to, NOW)
    from digest.send.mailers.outbox import OutboxMailer
    outbox = settings_with_outbox(tmp_path)
    outcomes = list(OutboxMailer(outbox.send_settings()).send(edition("Weekly\r\nBcc: victim@example.net"), [to],
                                              lambda ids: ids, "weekly-1"))
    assert [o.status for o in outcomes] == [DeliveryStatus.REFUSED]
    assert list((tmp_path / "outbox").rglob("*.eml")) == [] and list((tmp_path / "outbox").rglob("*.part")) == []


def settings_with_outbox(tmp_path: Path) -> config.Settings:
    return config.from_dict({"lists": [{"name": "weekly", "file": "weekly.csv"}],
                             "sending": {"outbox": {"dir": str(tmp_path / "outbox")}}}, root=tmp_path)


@settings(max_examples=200, deadline=None)
@given(before=st.text(max_size=20), brk=st.sampled_from(list(BREAKS)), after=st.text(max_size=20),
       header=st.sampled_from(["Subject", "To", "List-Unsubscribe"]))
def test_any_value_with_a_line_break_is_refused(before, brk, after, header):
    value = before + brk + after
    with pytest.raises(HeaderInjection):
        _header(header, value)
    with pytest.raises(HeaderInjection):
        check_headers({"Subject": "fine", header: value})


# ------------------------------------------------------------------ 3. addresses

def local_with(domain_strategy):
    return st.builds(lambda address, domain: address.rsplit("@", 1)[0] + "@" + domain, st.emails(), domain_strategy)


addresses = st.one_of(st.emails(), st.sampled_from(INTERNATIONAL), local_with(st.sampled_from(IDN_DOMAINS)))


def test_international_spellings_are_one_mailbox():
    assert email_key("jose@xn--bcher-kva.de") == email_key("JOSE@Bücher.DE") == email_key("jose@bücher.de")
    assert email_key("josé@example.org") == email_key("JOSé@EXAMPLE.ORG") == "josé@example.org"
    assert email_key("JOSÉ@example.org") != email_key("josé@example.org")     # only ASCII letters fold
    assert wire_address("JOSE@Bücher.DE") == ("JOSE@xn--bcher-kva.de", False)
    assert wire_address("josé@example.org") == ("josé@example.org", True)


@settings(max_examples=200, deadline=None)
@given(address=addresses)
def test_addresses_key_once_go_out_ascii_domain_and_round_trip(address):
    local, _, domain = address.rpartition("@")
    key = email_key(address)
    assert email_key(key) == key
    shouted = "".join(c.upper() if c.isascii() else c for c in local)      # case folds for ASCII letters only
    assert email_key(f"{shouted}@{domain.upper()}") == key
    assert email_key(f"{local}@{ascii_domain(domain)}") == key
    wired, smtputf8 = wire_address(address)
    assert wired.rpartition("@")[2].isascii() and wired.rpartition("@")[0] == local
    assert smtputf8 == (not local.isascii())
    to = recipient(SETTINGS.send_settings(), key="key", list_name="weekly", delivery_id=7, email=address, email_key=key,
                   name="Reader", edition_id=3)
    data, _ = wire(edition(), ORIGIN, to, NOW)
    assert_one_recipient(data, wired, to.smtputf8)


# ------------------------------------------------------------------ 4. settings that reach headers

@pytest.mark.parametrize(("section", "key", "value", "where"), [
    ("site", "title", "On Probation\r\nBcc: victim@example.net", "[site].title"),
    ("site", "title", "On Probation\nX: y", "[site].title"),
    ("web", "base_url", "http://localhost:8000\r\nX-Evil: 1", "[web].base_url"),
    ("sending", "from", "Digest <digest@example.org>\r\nBcc: victim@example.net", "[sending].from"),
])
def test_settings_with_a_line_break_are_refused_by_key_path(section, key, value, where):
    with pytest.raises(ConfigError) as refused:
        config.from_dict({section: {key: value}, "lists": [{"name": "weekly", "file": "weekly.csv"}]})
    assert len(refused.value.problems) == 1
    assert where in refused.value.problems[0]


@pytest.mark.parametrize("value", ["7d\n", "0h", "99999999999w"])
def test_bad_periods_are_refused_once_each(value):
    with pytest.raises(ConfigError) as refused:
        config.from_dict({"lists": [{"name": "weekly", "file": "weekly.csv", "period": value}]})
    assert len(refused.value.problems) == 1
    assert "[[lists]][0].period" in refused.value.problems[0]


# ------------------------------------------------------------------ 5. list files

def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.mark.parametrize(("row", "first", "last"), [
    ('b@example.org,"Eve\r\nBcc: victim@example.net"\n', 3, 4),
    ('b@example.org,"Eve\nBcc: victim@example.net"\n', 3, 4),
    ("b@example.org,Eve\x07\n", 3, 3),
    ("b@example.org,Eve\x1b[31m\n", 3, 3),
    ("b@example.org," + "E" * 201 + "\n", 3, 3),
])
def test_a_bad_name_is_a_bad_row_with_file_and_line(tmp_path, row, first, last):
    path = write(tmp_path / "weekly.csv", "email,name\na@example.org,Ann\n" + row + "c@example.org,Cy\n")
    result = read_csv(path)
    assert [m.email for m in result.subscribers] == ["a@example.org", "c@example.org"]
    assert len(result.problems) == 1
    found = re.match(rf"{re.escape(str(path))} line (\d+): ", result.problems[0])
    assert found and first <= int(found.group(1)) <= last, result.problems


def thousand(broken_at: int | None = None) -> str:
    rows = [f"reader{n:04d}@example.org,Reader {n}\n" for n in range(1000)]
    if broken_at is not None:
        rows[broken_at] = 'b@example.org,"Bob\n'
    return "email,name\n" + "".join(rows)


def test_an_unterminated_quote_stops_the_sync_and_retires_nobody(tmp_path, db):
    path = write(tmp_path / "weekly.csv", thousand())
    assert sync(db.lists, "weekly", path, NOW).added == 1000
    write(path, thousand(broken_at=500))            # row 501 is file line 502
    with pytest.raises(ListFileError, match=r"weekly\.csv line 502\b"):
        sync(db.lists, "weekly", path, NOW)
    rows = db.lists.listing("weekly")
    assert len(rows) == 1000 and all(r["active"] and r["reason"] is None for r in rows)
    assert db.lists.count("weekly") == 1000
    assert not any("@" in r["name"] or "\n" in r["name"] for r in rows)
    assert "b@example.org" not in {r["email"] for r in rows}


def test_read_csv_reports_an_unterminated_quote_as_a_list_file_error(tmp_path):
    """What `digest subscribers import` reads: a broken file is a ListFileError naming
    the line, not a bare csv.Error (a traceback)."""
    path = write(tmp_path / "weekly.csv", thousand(broken_at=500))
    with pytest.raises(ListFileError, match=r"line 502\b"):
        read_csv(path)


csv_rows = st.lists(st.tuples(st.one_of(st.emails(), st.text(max_size=40)), names), max_size=25)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=csv_rows)
def test_read_csv_raises_only_list_file_error_and_keeps_only_clean_names(tmp_path, rows):
    path = tmp_path / "weekly.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name"])
        writer.writerows(rows)
    try:
        result = read_csv(path)
    except ListFileError:
        return
    for member in result.subscribers:
        assert name_problem(member.name) is None, member


# ------------------------------------------------------------------ 6, 7. the CLI

def cli_config(tmp_path: Path) -> Path:
    (tmp_path / "weekly.csv").write_text("email,name\n", encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "digest.db"}"\n\n'
                    '[[lists]]\nname = "weekly"\nfile = "weekly.csv"\n', encoding="utf-8")
    return path


def run(path: Path, *args: str):
    return CliRunner().invoke(cli, ["--config", str(path), *args], catch_exceptions=False)


def test_cli_add_refuses_a_name_with_a_line_break(tmp_path):
    path = cli_config(tmp_path)
    result = run(path, "subscribers", "add", "weekly", "x@example.org", "--name", "Eve\r\nBcc: victim@example.net")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    with Database.open(f"sqlite:///{tmp_path / 'digest.db'}") as db:
        assert db.lists.listing("weekly") == []


def test_export_defuses_formulas_in_every_cell(tmp_path):
    path = cli_config(tmp_path)
    people = [("sum@example.org", "=SUM(A1:A9)"), ("plus@example.org", "+1 555 0100"), ("minus@example.org", "-2+3"),
              ("at@example.org", "@cmd"), ("plain@example.org", "Plain Name"),
              ("=cmd@example.org", "Equals Local"), ("-dash@example.org", "Dash Local")]
    for address, name in people:
        assert run(path, "subscribers", "add", f"--name={name}", "--", "weekly", address).exit_code == 0
    result = run(path, "subscribers", "export", "weekly")
    assert result.exit_code == 0
    read = list(csv.reader(result.stdout.splitlines()))
    assert read[0] == ["email", "name"]
    got = dict(read[1:])
    def defused(cell: str) -> str:
        return "'" + cell if cell[0] in "=+-@" else cell
    assert set(got) == {defused(address) for address, _ in people}          # addresses too: `=cmd@x` is valid
    for address, name in people:
        assert got[defused(address)] == defused(name)


# ------------------------------------------------------------------ 8. the subscribe form

@pytest.fixture
def secrets(monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", "test-secret-key-for-hostile-input")


def csrf(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def outbox_files(world: World, pattern: str) -> list[Path]:
    return sorted((world.folder / ".." / "demo" / "outbox").resolve().glob(pattern))


EVIL_NAME = "Eve\r\nBcc: victim@example.net\r\nContent-Type: text/html\r\n\r\n<h1>locked</h1>"


def test_subscribe_form_with_a_header_in_the_name(tmp_path, db_url, secrets):
    world = World(tmp_path, db_url, 3)
    client = create_app(world.settings, world.db).test_client()
    answer = client.post("/subscribe/weekly", data={"csrf": csrf(client, "/subscribe/weekly"),
                                                     "email": "new.reader@example.org", "name": EVIL_NAME})
    assert answer.status_code == 200 and "Check your inbox" in answer.get_data(as_text=True)
    mail = outbox_files(world, "confirm-*/*.eml")
    assert len(mail) == 1
    data = mail[0].read_bytes()
    message = assert_one_recipient(data, "new.reader@example.org", False, CONFIRMATION_HEADERS)
    assert "victim@example.net" not in " ".join(message.get_all("Content-Type"))
    body = message.get_body(("plain",)).get_content()
    link = re.search(r"http://localhost:8000(/confirm/\S+)", body).group(1)
    confirmed = client.post(link, data={"csrf": csrf(client, link)})
    assert confirmed.status_code == 200
    row = next(r for r in world.db.lists.listing("weekly") if r["email"] == "new.reader@example.org")
    assert name_problem(row["name"]) is None
    world.close()


def test_subscribe_form_takes_a_utf8_local_part_through_the_outbox(tmp_path, db_url, secrets):
    world = World(tmp_path, db_url, 3)
    client = create_app(world.settings, world.db).test_client()
    answer = client.post("/subscribe/weekly", data={"csrf": csrf(client, "/subscribe/weekly"),
                                                     "email": "josé@example.org", "name": "José"})
    assert answer.status_code == 200 and "Check your inbox" in answer.get_data(as_text=True)
    mail = outbox_files(world, "confirm-*/*.eml")
    assert len(mail) == 1
    assert "josé@example.org".encode() in mail[0].read_bytes()
    assert_one_recipient(mail[0].read_bytes(), "josé@example.org", True, CONFIRMATION_HEADERS)
    world.close()


@pytest.fixture
def sendgrid(monkeypatch):
    server = SendGridStandIn()
    monkeypatch.setenv("SENDGRID_API_KEY", server.api_key)
    yield server
    server.stop()


def test_subscribe_form_refuses_a_utf8_local_part_with_sendgrid(tmp_path, db_url, secrets, sendgrid):
    world = World(tmp_path, db_url, 3, backend="sendgrid",
                  sendgrid={"host": sendgrid.host, "timeout": 1.0, "backoff": 0.01})
    client = create_app(world.settings, world.db).test_client()
    answer = client.post("/subscribe/weekly", data={"csrf": csrf(client, "/subscribe/weekly"),
                                                     "email": "josé@example.org", "name": "José"})
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    assert "That address does not work" in page and "non-ASCII" in page
    assert sendgrid.requests == 0
    world.close()


# ------------------------------------------------------------------ 9. a send to international addresses

MIXED = ["josé@example.org", "jose@xn--bcher-kva.de", "ann@bücher.de", "reader00000@example.org",
         "reader00001@example.org"]


def test_outbox_send_to_international_addresses(tmp_path, db_url, secrets):
    world = World(tmp_path, db_url, 0)
    world.write_list(MIXED)
    report = send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    assert report.counts == {DeliveryStatus.ACCEPTED: 5}
    seen = []
    for path in outbox_files(world, f"weekly-{report.edition_id}/*.eml"):
        data = path.read_bytes()
        smtputf8 = not data.split(b"\r\n\r\n", 1)[0].isascii()
        message = parse(data, smtputf8)
        assert len(message.get_all("To")) == 1
        seen.append(message["To"].addresses[0].addr_spec)
    assert sorted(seen) == sorted(["josé@example.org", "jose@xn--bcher-kva.de", "ann@xn--bcher-kva.de",
                                   "reader00000@example.org", "reader00001@example.org"])
    world.close()


def test_sendgrid_send_refuses_only_the_utf8_local_part(tmp_path, db_url, secrets, sendgrid):
    world = World(tmp_path, db_url, 0, backend="sendgrid",
                  sendgrid={"host": sendgrid.host, "timeout": 1.0, "backoff": 0.01})
    # josé@ was stored while the list went out through a backend with SMTPUTF8
    world.db.lists.merge("weekly", [Subscriber("josé@example.org", "José")], Origin.CLI, NOW)
    world.write_list(MIXED)
    report = send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    assert report.counts == {DeliveryStatus.ACCEPTED: 4, DeliveryStatus.REFUSED: 1}
    with world.db.engine.connect() as connection:
        refused = connection.execute(sa.select(deliveries.c.email, deliveries.c.error).where(
            deliveries.c.edition_id == report.edition_id, deliveries.c.status == DeliveryStatus.REFUSED.value)).all()
    assert [r.email for r in refused] == ["josé@example.org"]
    assert "SMTPUTF8" in refused[0].error
    received = Counter(sendgrid.recipients())
    assert received == Counter({"jose@xn--bcher-kva.de": 1, "ann@xn--bcher-kva.de": 1,
                                "reader00000@example.org": 1, "reader00001@example.org": 1})
    world.close()
