"""The list importer reads the usual exports: Mailchimp ("Email Address", "First Name",
"Last Name"), Substack, Buttondown, spreadsheets ("E-mail", "Name"), with comma,
semicolon or tab between the columns."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.cli import cli
from digest.send.subscribers import ListFileError, read_csv

from .support.world import World

EMAIL_HEADERS = ["email", "Email", "EMAIL", "Email Address", "email_address", "E-mail", "e-mail address", "Mail"]
NAME_HEADERS = [None, "name", "Name", "full_name", "Full Name", ("First Name", "Last Name"),
                ("first_name", "last_name"), ("FNAME", "LNAME")]
DELIMITERS = [",", ";", "\t"]

words = st.text(st.characters(whitelist_categories=("Lu", "Ll"), max_codepoint=0x24F), min_size=1, max_size=12)
local = st.text("abcdefghijklmnopqrstuvwxyz0123456789.", min_size=1, max_size=20).filter(
    lambda t: not t.startswith(".") and not t.endswith(".") and ".." not in t)
person = st.tuples(local, st.sampled_from(["example.org", "blog.example.com"]), words, words | st.just(""))


def write(path: Path, delimiter: str, email_header: str, name_header: object,
          rows: list[tuple[str, str, str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle, delimiter=delimiter)
        names = list(name_header) if isinstance(name_header, tuple) else [name_header] if name_header else []
        out.writerow([email_header, *names, "Tags"])
        for user, domain, first, last in rows:
            cells = [first, last] if isinstance(name_header, tuple) else [f"{first} {last}".strip()] if names else []
            out.writerow([f"{user}@{domain}", *cells, "a;b\tc,d"])


def expected_name(name_header: object, first: str, last: str) -> str:
    return "" if name_header is None else f"{first} {last}".strip()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(person, min_size=1, max_size=8, unique_by=lambda p: p[0]),
       delimiter=st.sampled_from(DELIMITERS), email_header=st.sampled_from(EMAIL_HEADERS),
       name_header=st.sampled_from(NAME_HEADERS))
def test_every_delimiter_and_header_alias_reads_the_same_members(rows, delimiter, email_header, name_header):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export.csv"
        write(path, delimiter, email_header, name_header, rows)
        read = read_csv(path)
    assert read.problems == []
    got = sorted((m.email, m.name) for m in read.subscribers)
    assert got == sorted((f"{u}@{d}", expected_name(name_header, f, la)) for u, d, f, la in rows)
    assert all(m.extra.get("tags") == "a;b\tc,d" for m in read.subscribers)     # other delimiters inside cells survive


EXPORTS = {
    "mailchimp": ('"Email Address","First Name","Last Name","Address","Phone Number",MEMBER_RATING\n'
                  '"pat@example.org","Pat","Jones","","",2\n', ("pat@example.org", "Pat Jones")),
    "substack": ("email,active_subscription,expiry,plan,email_disabled,created_at\n"
                 "pat@example.org,false,,free,false,2024-01-02T10:00:00.000Z\n", ("pat@example.org", "")),
    "buttondown": ("email_address,notes,metadata,tags,creation_date,type\n"
                   "pat@example.org,,{},,2024-01-02,regular\n", ("pat@example.org", "")),
    "buttondown-old": ("email;creation_date;subscriber_type\npat@example.org;2024-01-02;regular\n",
                       ("pat@example.org", "")),
    "spreadsheet": ("Name\tE-mail\nPat Jones\tpat@example.org\n", ("pat@example.org", "Pat Jones")),
}


@pytest.mark.parametrize("kind", sorted(EXPORTS))
def test_real_export_headers(tmp_path, kind):
    text, member = EXPORTS[kind]
    path = tmp_path / f"{kind}.csv"
    path.write_text(text, encoding="utf-8")
    read = read_csv(path)
    assert read.problems == [] and [(m.email, m.name) for m in read.subscribers] == [member]


def test_bad_rows_stay_one_line_errors_with_file_and_line(tmp_path):
    path = tmp_path / "semicolons.csv"
    path.write_text("Email Address;First Name\ngood@example.org;Good\nnot-an-address;Bad\n"
                    "other@example.org;Other\n", encoding="utf-8")
    read = read_csv(path)
    assert [m.email for m in read.subscribers] == ["good@example.org", "other@example.org"]
    assert len(read.problems) == 1 and "\n" not in read.problems[0]
    assert read.problems[0].startswith(f"{path} line 3: 'not-an-address' is not a valid address")


def test_no_email_column_lists_what_was_found(tmp_path):
    path = tmp_path / "no.csv"
    path.write_text("Address;Name\nx@example.org;X\n", encoding="utf-8")
    with pytest.raises(ListFileError, match=r"line 1: no 'email' column \(found: Address, Name\)"):
        read_csv(path)


def test_a_header_with_two_email_columns_takes_the_first(tmp_path):
    path = tmp_path / "two.csv"
    path.write_text("Email,email_address\nfirst@example.org,second@example.org\n", encoding="utf-8")
    read = read_csv(path)
    assert [m.email for m in read.subscribers] == ["first@example.org"]
    assert read.subscribers[0].extra == {"email_address": "second@example.org"}


def test_the_cli_imports_a_mailchimp_export(tmp_path):
    world = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 1)
    try:
        export = tmp_path / "members_export.csv"
        export.write_text(EXPORTS["mailchimp"][0], encoding="utf-8")
        result = CliRunner().invoke(cli, ["--config", str(world.config_path), "subscribers", "import", "weekly",
                                           str(export)])
        assert result.exit_code == 0, result.output
        assert any(r["email"] == "pat@example.org" and r["name"] == "Pat Jones"
                   for r in world.db.lists.listing("weekly"))
    finally:
        world.close()
