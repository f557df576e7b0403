"""Approve by reply (issue 31, item 5): the review mail of a held edition answers to its
tokened approve address; the editor's reply, as a mail server delivers it to the Maildir
`digest mailbox` reads, approves (every reader gets it once), skips, or sets the note
first. A reply counts only from [editor] email with the topmost Authentication-Results
written by the server trusted ([mailbox] authserv_id, or the provider's known name) and
passing for its domain, and only its own first line decides (not the review mail it
quotes), when it is the word alone. Everything else changes nothing and the editor gets
one letter saying why; read twice, a message does nothing twice; a part the email package
cannot read stops neither the read nor the letter."""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
from collections import Counter
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from digest import actions
from digest.actions.approval import REPLY_HOW
from digest.cli import cli
from digest.db.tables import mail_messages
from digest.live.providers import AUTHSERV_HOW
from digest.send.signing import MAIL_APPROVE, MAIL_UNSUBSCRIBE, address_token, secret_key
from digest.signals import authresults, replies
from digest.signals.addresses import route

from .support.processes import run_digest
from .support.world import World
from .test_browser import SHOTS

EDITOR = "editor@onprobation-digest.org"
DOMAIN_OF_EDITOR = "onprobation-digest.org"
MAILBOX = "pickoftheweek@example.net"
RUN_AT = datetime(2017, 11, 1, 7, tzinfo=UTC)          # the scheduled run that holds 25-31 October
PASS = ("mx.example.net; dkim=pass (2048-bit key) header.d=onprobation-digest.org header.s=k1 header.b=Xy; "
        "spf=pass (example.net: domain of editor@onprobation-digest.org designates 192.0.2.1 as permitted sender) "
        "smtp.mailfrom=editor@onprobation-digest.org")
FAIL = ("mx.example.net; dkim=fail (signature did not verify) header.d=onprobation-digest.org; "
        "spf=softfail smtp.mailfrom=editor@onprobation-digest.org")
SECRET = "approve-by-reply-secret-0123456789"
SERVER = "mx.example.net"                               # the receiving server of the test's mailbox


@pytest.fixture
def world(make_world, db_url, monkeypatch, tmp_path):
    return mail_world(make_world, db_url, monkeypatch, tmp_path)


@pytest.fixture
def sqlite_world(make_world, monkeypatch, tmp_path):
    """The same world on SQLite alone (the browser test runs once)."""
    return mail_world(make_world, None, monkeypatch, tmp_path)


def mail_world(make_world, url, monkeypatch, tmp_path) -> World:
    """The sample world with approval required, an [editor] email and a Maildir mailbox with an address."""
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)
    made = make_world(url, 4)
    for sub in ("new", "cur", "tmp"):
        (tmp_path / "maildir" / sub).mkdir(parents=True)
    made.data["lists"][0].update({"approval": "required"})
    made.data["editor"] = {"email": f"The Editor <{EDITOR}>"}
    made.data["mailbox"] = {"address": MAILBOX, "maildir": str(tmp_path / "maildir"), "authserv_id": SERVER}
    made.reload()
    return made


# ------------------------------------------------------------------ helpers

def outbox(world: World, pattern: str) -> list[EmailMessage]:
    paths = sorted((world.folder / ".." / "demo" / "outbox").resolve().glob(pattern))
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in paths]


def readers_got(world: World) -> Counter[str]:
    return Counter(m["To"].addresses[0].addr_spec for m in outbox(world, "weekly-*/*.eml"))


def refusals(world: World) -> list[EmailMessage]:
    return outbox(world, "approve-refused-*/*.eml")


def hold(world: World) -> tuple[int, EmailMessage]:
    outcome = actions.scheduled_run(world.settings, world.db, "weekly", RUN_AT)
    edition_id = int(re.search(r"held for approval: edition (\d+)", outcome.outcome).group(1))
    return edition_id, outbox(world, "review-*/*.eml")[-1]


def status(world: World, edition_id: int) -> str:
    return world.db.ledger.info(edition_id).status


def answer(review: EmailMessage, text: str | None = None, *, html: str | None = None, sender: str = EDITOR,
           results: tuple[str, ...] = (PASS,), name: str = "1", cte: str | None = None, to: str = "") -> EmailMessage:
    """The editor's reply to the review as the mailbox's server delivers it: its own
    Authentication-Results on top, Delivered-To the address it was sent to."""
    message = EmailMessage()
    for value in results:
        message["Authentication-Results"] = value
    message["Delivered-To"] = to or review["Reply-To"]
    message["From"] = f"The Editor <{sender}>"
    message["To"] = to or review["Reply-To"]
    message["Subject"] = f"Re: {review['Subject']}"
    message["Message-ID"] = f"<reply-{name}@onprobation-digest.org>"
    message["In-Reply-To"] = review["Message-ID"]
    if text is not None:
        message.set_content(text, cte=cte) if cte else message.set_content(text)
    if html is not None:
        if text is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
    return message


def quoted(review: EmailMessage) -> str:
    """The review mail as a mail app quotes it below a reply."""
    text = review.get_body(("plain",)).get_content()
    return "On Wed, 1 Nov 2017 at 07:00, On Probation digest <digest@example.org>\nwrote:\n\n" + "\n".join(
        f"> {line}" for line in text.splitlines())


def deliver(world: World, message: EmailMessage | bytes, name: str) -> Path:
    raw = message if isinstance(message, bytes) else message.as_bytes()
    folder = Path(world.settings.mailbox.maildir)
    (folder / "tmp" / name).write_bytes(raw)
    (folder / "tmp" / name).replace(folder / "new" / name)
    return folder / "new" / name


def read_mailbox(world: World, *options: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(world.config_path), "mailbox", *options])
    assert result.exit_code == 0, result.output
    return result.output


def unread_again(world: World) -> None:
    """Every message of the Maildir back in new/, as if none had been marked."""
    folder = Path(world.settings.mailbox.maildir)
    for name in os.listdir(folder / "cur"):
        os.replace(folder / "cur" / name, folder / "new" / name.split(":2,")[0])


def key(world: World) -> str:
    return secret_key(world.settings.send_settings())


# ------------------------------------------------------------------ the review mail

def test_the_review_mail_answers_to_the_editions_approve_address_and_says_how(world):
    edition_id, review = hold(world)
    token = address_token(key(world), MAIL_APPROVE, edition_id)
    assert review["To"].addresses[0].addr_spec == EDITOR
    assert review["Reply-To"] == f"pickoftheweek+approve-{token}@example.net"
    text, html = review.get_body(("plain",)).get_content(), review.get_body(("html",)).get_content()
    assert REPLY_HOW in text and "Reply <strong>approve</strong> to send it" in html
    assert f"mailto:pickoftheweek+approve-{token}@example.net?subject=" in html and "&amp;body=approve" in html
    assert "Review, approve or skip:" not in text                   # mail mode: no page a phone could open
    assert "On the machine digest runs on, the review page: http://localhost:8000/editor/weekly/review/" in text


def test_with_a_public_address_the_review_link_stays_beside_the_reply(world):
    world.data["web"]["base_url"] = "https://digest.onprobation-digest.org"
    world.reload()
    _, review = hold(world)
    text, html = review.get_body(("plain",)).get_content(), review.get_body(("html",)).get_content()
    assert "Review, approve or skip: https://digest.onprobation-digest.org/editor/weekly/review/" in text
    assert REPLY_HOW in text and ">Review, approve or skip</a>" in html and "+approve-" in review["Reply-To"]


def test_without_a_mailbox_address_the_review_is_as_before(world):
    world.data["mailbox"] = {"maildir": world.data["mailbox"]["maildir"]}
    world.reload()
    _, review = hold(world)
    assert review["Reply-To"] is None and REPLY_HOW not in review.get_body(("plain",)).get_content()


# ------------------------------------------------------------------ what a reply does

def test_approve_by_reply_sends_once_to_every_reader_and_a_second_reply_is_told_it_is_done(world):
    edition_id, review = hold(world)
    deliver(world, answer(review, "Approve!\n\n" + quoted(review)), "1")
    said = read_mailbox(world)
    assert f"edition {edition_id}: approved" in said and "4 accepted" in said
    assert readers_got(world) == Counter({f"reader{n:05d}@example.org": 1 for n in range(4)})
    assert status(world, edition_id) == "sent"
    [notice] = outbox(world, "notice-sent-*/*.eml")                  # the editor hears it went
    assert notice["To"].addresses[0].addr_spec == EDITOR and "went to 4 reader(s)" in notice.get_body(
        ("plain",)).get_content()
    unread_again(world)                                              # marked read, then found unread: nothing
    read_mailbox(world)
    deliver(world, answer(review, "ok", name="2"), "2")             # the same token again: it worked once
    said = read_mailbox(world)
    assert "refused: edition" in said and "not held any more" in said
    assert sum(readers_got(world).values()) == 4 and len(outbox(world, "notice-sent-*/*.eml")) == 1
    [letter] = refusals(world)
    assert letter["To"].addresses[0].addr_spec == EDITOR
    body = letter.get_body(("plain",)).get_content()
    assert "not held any more: it was approved by reply" in body and "a token works once" in body
    assert "digest approve weekly" not in body                       # nothing left to approve
    assert route(letter, world.settings.mailbox) is None             # back in the mailbox, it acts on nothing


def test_skip_by_reply_sends_nothing(world):
    edition_id, review = hold(world)
    deliver(world, answer(review, "skip\n\nNot this week.\n-- \nThe Editor"), "1")
    assert f"edition {edition_id}: skipped" in read_mailbox(world)
    assert status(world, edition_id) == "skipped" and readers_got(world) == Counter()
    assert world.db.ledger.info(edition_id).decision.startswith("skipped by reply ")
    assert len(outbox(world, "notice-skipped-*/*.eml")) == 1 and refusals(world) == []


def test_a_note_then_approve_sends_the_edition_with_the_note(world):
    edition_id, review = hold(world)
    body = "note: A big week on the blog.\nRead the Panorama thread first.\n\napprove\n\n" + quoted(review)
    deliver(world, answer(review, body), "1")
    said = read_mailbox(world)
    assert f"edition {edition_id}: set the note, approved" in said
    sent = outbox(world, "weekly-*/*.eml")
    assert len(sent) == 4
    text = sent[0].get_body(("plain",)).get_content()
    assert "A big week on the blog." in text and "Read the Panorama thread first." in text
    assert "HELD FOR YOUR APPROVAL" not in text                       # the quote is not the note


def test_a_note_alone_sets_it_builds_the_edition_again_and_mails_the_review_anew(world):
    edition_id, review = hold(world)
    deliver(world, answer(review, "Note: Short one this week.\n\n" + quoted(review)), "1")
    assert "set the note and built it again (not approved" in read_mailbox(world)
    assert status(world, edition_id) == "held" and readers_got(world) == Counter()
    first, again = outbox(world, "review-*/*.eml")
    assert "Short one this week." in again.get_body(("plain",)).get_content()
    assert again["Reply-To"] == first["Reply-To"]                      # the same edition, the same address
    deliver(world, answer(again, "yes", name="2"), "2")
    read_mailbox(world)
    assert sum(readers_got(world).values()) == 4


@pytest.mark.parametrize("encoding", ["quoted-printable", "base64"])
def test_an_encoded_reply_is_read_decoded(world, encoding):
    edition_id, review = hold(world)
    message = answer(review, "Yes — thanks!\nnote: Café society, vol. 2\n\n" + quoted(review), cte=encoding)
    encoded = b"Yes =E2=80=94 thanks" if encoding == "quoted-printable" else b"WWVzIOKAlCB0aGFua3Mh"
    assert encoded in message.as_bytes()
    deliver(world, message, "1")
    read_mailbox(world)
    sent = outbox(world, "weekly-*/*.eml")
    assert len(sent) == 4 and "Café society, vol. 2" in sent[0].get_body(("plain",)).get_content()


def test_an_html_only_reply_is_read_as_text_and_its_quote_left_out(world):
    edition_id, review = hold(world)
    quote = review.get_body(("html",)).get_content()
    html = (f'<div dir="ltr"><b>OK</b>, thanks!<script>alert("skip")</script></div><br><div class="gmail_quote">'
            f'<div class="gmail_attr">On Wed, 1 Nov 2017, digest wrote:<br></div><blockquote class="gmail_quote">'
            f'{quote}</blockquote></div>')
    deliver(world, answer(review, html=html), "1")
    assert "approved" in read_mailbox(world)
    assert sum(readers_got(world).values()) == 4


def test_a_reply_whose_only_approve_is_in_the_quoted_review_approves_nothing(world):
    edition_id, review = hold(world)
    plain = review.get_body(("plain",)).get_content()
    bodies = {
        "quoted": answer(review, "\n" + quoted(review).replace("> HELD", "> approve\n> HELD", 1), name="q"),
        "html": answer(review, html=f'<div><br></div><blockquote type="cite"><p>approve</p>'
                                    f'{review.get_body(("html",)).get_content()}</blockquote>', name="h"),
        "outlook": answer(review, "\n\n________________________________\nFrom: On Probation digest\n"
                                  f"Sent: Wednesday, 1 November 2017 07:00\n\napprove\n{plain}", name="o"),
    }
    for name, message in bodies.items():
        deliver(world, message, name)
    said = read_mailbox(world)
    assert said.count("refused: its first line (nothing) says neither approve nor skip") == 3, said
    assert status(world, edition_id) == "held" and readers_got(world) == Counter()
    letters = refusals(world)
    assert len(letters) == 3 and all("Reply with approve" in m.get_body(("plain",)).get_content() for m in letters)


DOUBTFUL = {                                                          # the deciding line, what the editor is told
    "ok wait, do NOT send yet": "is not ok alone (it has “wait”)",
    "OK?": "is not ok alone (it has a question mark)",
    "Yes, but not before Friday": "is not yes alone (it has “but”)",
    "Send me the preview again first, please": "is not send alone (it has “first”)",
    "Approve? I think the 2nd thread is libel": "is not approve alone (it has a question mark)",
}


def test_a_first_line_that_is_not_the_word_alone_sends_nothing_and_the_editor_is_told_what_to_send(sqlite_world):
    world = sqlite_world
    edition_id, review = hold(world)
    for number, first in enumerate(DOUBTFUL):
        deliver(world, answer(review, f"{first}\n\n{quoted(review)}", name=f"d{number}"), f"d{number}")
    said = read_mailbox(world)
    assert said.count("refused: its first line (") == len(DOUBTFUL), said
    assert all(told in said for told in DOUBTFUL.values()), said
    assert status(world, edition_id) == "held" and readers_got(world) == Counter()
    letters = [m.get_body(("plain",)).get_content() for m in refusals(world)]
    assert len(letters) == 5 and all("Reply with approve alone on the first line" in body for body in letters)
    assert all("Nothing was changed." in body for body in letters)
    deliver(world, answer(review, f"Yes please\n\nThanks, J\n\n{quoted(review)}", name="yes"), "yes")
    assert f"edition {edition_id}: approved" in read_mailbox(world)           # the word alone, a sign-off below
    assert readers_got(world) == Counter({f"reader{n:05d}@example.org": 1 for n in range(4)})


BROKEN_DISPOSITION = b"Content-Disposition: a;\x00*"                   # IndexError in Python's own header parser


def test_a_part_the_email_package_cannot_read_stops_neither_the_read_nor_the_letter(sqlite_world):
    world = sqlite_world
    edition_id, review = hold(world)
    forged = answer(review, "approve", sender="mallory@example.com", name="forged",
                    to=MAILBOX.replace("@", "+approve-1-aaaaaaaaaaaa@"))
    own = answer(review, "approve", name="own")                    # the editor's, its one part unreadable
    for name, message in (("forged", forged), ("own", own)):
        raw = message.as_bytes().replace(b"\nSubject:", b"\n" + BROKEN_DISPOSITION + b"\nSubject:", 1)
        assert BROKEN_DISPOSITION in raw
        deliver(world, raw, name)
    said = read_mailbox(world)                                       # exit code 0: no traceback
    assert "a token digest did not make" in said and "(nothing) says neither approve nor skip" in said, said
    assert status(world, edition_id) == "held" and readers_got(world) == Counter()
    assert len(refusals(world)) == 2                                 # recorded, and each letter went
    unread_again(world)
    read_mailbox(world)
    assert len(refusals(world)) == 2


# ------------------------------------------------------------------ who may

def test_a_forged_from_is_refused_and_the_editor_told_not_the_forger(world):
    edition_id, review = hold(world)
    forged = answer(review, "approve", sender="mallory@example.com",
                    results=("mx.example.net; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=example.com",))
    deliver(world, forged, "1")
    said = read_mailbox(world)
    assert "refused: it came from mallory@example.com" in said
    assert status(world, edition_id) == "held" and readers_got(world) == Counter()
    [letter] = refusals(world)
    assert letter["To"].addresses[0].addr_spec == EDITOR                        # never to the From
    assert "mallory@example.com" in letter.get_body(("plain",)).get_content()
    assert sorted(os.listdir(Path(world.settings.mailbox.maildir) / "cur")) == ["1:2,F"]   # flagged, for the editor
    unread_again(world)                                              # read again: still one letter
    read_mailbox(world)
    assert len(refusals(world)) == 1


UNVOUCHED = {
    "failing": (FAIL,),                                               # the server says it failed
    "absent": (),                                                     # no Authentication-Results at all
    "lower-only": (FAIL, PASS),                                       # only a lower (the sender's own) one passes
    "other-domain": ("mx.example.net; dkim=pass header.d=evil.example; spf=pass smtp.mailfrom=bounce@evil.example",),
    "lookalike": ("mx.example.net; dkim=pass header.d=onprobation-digest.org.evil.example; spf=none",),
    "helo-only": ("mx.example.net; spf=pass smtp.helo=onprobation-digest.org; dkim=neutral "
                  "header.d=onprobation-digest.org",),
}


def test_the_editors_from_without_a_passing_authentication_is_refused(world):
    edition_id, review = hold(world)
    for name, results in UNVOUCHED.items():
        deliver(world, answer(review, "approve", results=results, name=name), name)
    said = read_mailbox(world)
    assert said.count("refused: its From is yours, but") == len(UNVOUCHED), said
    assert "no Authentication-Results header" in said and "(dkim=fail, spf=softfail)" in said
    assert status(world, edition_id) == "held" and readers_got(world) == Counter()
    letters = refusals(world)
    assert len(letters) == 5 and all("DKIM" in m.get_body(("plain",)).get_content() for m in letters)   # an hour


FORGED = {                                                            # the receiving server wrote none on top
    "foreign": (f"evil.example; dkim=pass header.d={DOMAIN_OF_EDITOR}; spf=pass smtp.mailfrom={EDITOR}",
                "written by evil.example, not by the server that receives the mailbox's mail (mx.example.net)"),
    "lookalike": (f"mx.example.net.evil.example; dkim=pass header.d={DOMAIN_OF_EDITOR}",
                  "written by mx.example.net.evil.example"),
    "no-dot": (f"evilmx.example.net; dkim=pass header.d={DOMAIN_OF_EDITOR}", "written by evilmx.example.net"),
    "unnamed": (f"spf=pass (sender IP is 192.0.2.1) smtp.mailfrom={DOMAIN_OF_EDITOR}; dkim=pass (signature was "
                f"verified) header.d={DOMAIN_OF_EDITOR};dmarc=pass action=none header.from={DOMAIN_OF_EDITOR}",
                "written by a server that names none"),
}


def test_an_authentication_results_the_receiving_server_did_not_write_vouches_for_nothing(sqlite_world):
    world = sqlite_world
    edition_id, review = hold(world)
    for name, (value, _) in FORGED.items():
        deliver(world, answer(review, "approve", results=(value,), name=name), name)
    said = read_mailbox(world)
    assert said.count("refused: its From is yours, but the topmost Authentication-Results was written by") == 4, said
    assert all(told in said for _, told in FORGED.values()), said
    assert status(world, edition_id) == "held" and readers_got(world) == Counter() and len(refusals(world)) == 4


def test_without_the_receiving_servers_name_a_reply_is_refused_and_the_editor_told_to_set_it(sqlite_world):
    world = sqlite_world
    del world.data["mailbox"]["authserv_id"]                          # example.net: a provider digest does not know
    world.reload()
    edition_id, review = hold(world)
    deliver(world, answer(review, "approve", name="1"), "1")
    said = read_mailbox(world)
    assert "refused: digest does not know the name of the server that receives the mailbox's mail" in said
    assert status(world, edition_id) == "held" and readers_got(world) == Counter()
    [letter] = refusals(world)
    body = letter.get_body(("plain",)).get_content()
    assert f"Set [mailbox] authserv_id in config.toml: {AUTHSERV_HOW}." in body and "digest approve weekly" in body
    world.data["mailbox"]["authserv_id"] = "Example.NET"             # a parent of mx.example.net, in any case
    world.reload()
    deliver(world, answer(review, "approve", name="2"), "2")
    assert f"edition {edition_id}: approved" in read_mailbox(world)
    assert sum(readers_got(world).values()) == 4


def test_a_gmail_mailbox_believes_googles_receiving_servers_and_no_other(sqlite_world):
    world = sqlite_world
    world.data["mailbox"] = {"address": "pickoftheweek@gmail.com", "maildir": world.data["mailbox"]["maildir"]}
    world.reload()
    edition_id, review = hold(world)
    assert review["Reply-To"].endswith("@gmail.com")
    deliver(world, answer(review, "approve", name="1"), "1")                  # PASS, as mx.example.net wrote it
    assert "written by mx.example.net, not by the server that receives the mailbox's mail (mx.google.com)" in (
        read_mailbox(world))
    google = (f"mx.google.com; dkim=pass header.i=@{DOMAIN_OF_EDITOR} header.s=k1 header.b=Xy; spf=pass (google.com: "
              f"domain of {EDITOR} designates 192.0.2.1 as permitted sender) smtp.mailfrom={EDITOR}; dmarc=pass")
    deliver(world, answer(review, "approve", results=(google,), name="2"), "2")
    assert f"edition {edition_id}: approved" in read_mailbox(world) and sum(readers_got(world).values()) == 4


def test_spf_alone_or_dkim_by_header_i_pass(world):
    edition_id, review = hold(world)
    spf = "mx.example.net 1; spf=pass (sender SPF authorized) smtp.mailfrom=\"editor\"@ONPROBATION-DIGEST.org"
    deliver(world, answer(review, "send", results=(spf,), sender="editor@OnProbation-Digest.ORG"), "1")
    assert "approved" in read_mailbox(world) and sum(readers_got(world).values()) == 4
    message = email.message_from_string("Authentication-Results: x; dkim=pass header.i=@onprobation-digest.org\n\n")
    assert authresults.passes(message, "onprobation-digest.org", "x")


def test_a_token_of_another_edition_or_purpose_does_nothing(world):
    first, review = hold(world)
    actions.approval.skip(world.settings, world.db, world.weekly, first, RUN_AT)
    second = actions.approval.hold_edition(world.settings, world.db, world.weekly, world.since, world.until, RUN_AT)
    assert second.edition_id != first
    deliver(world, answer(review, "approve", name="old"), "1")                      # the skipped edition's token
    unsubscribe = MAILBOX.replace("@", f"+approve-{address_token(key(world), MAIL_UNSUBSCRIBE, second.edition_id)}@")
    deliver(world, answer(review, "approve", name="purpose", to=unsubscribe), "2")  # a token made for another use
    missing = MAILBOX.replace("@", f"+approve-{address_token(key(world), MAIL_APPROVE, 999)}@")
    deliver(world, answer(review, "approve", name="missing", to=missing), "3")
    said = read_mailbox(world)
    assert f"edition {first} is not held any more: it was skipped" in said
    assert "a token digest did not make for an approval" in said and "edition 999 is not in the database" in said
    assert status(world, second.edition_id) == "held" and readers_got(world) == Counter()
    assert len(refusals(world)) == 3


def test_an_automatic_reply_is_never_acted_on_nor_answered(world):
    edition_id, review = hold(world)
    away = answer(review, "approve\n\nI am away until Monday.")
    away["Auto-Submitted"] = "auto-replied"
    deliver(world, away, "1")
    assert "refused: it is automatic mail (Auto-Submitted: auto-replied)" in read_mailbox(world)
    assert status(world, edition_id) == "held" and refusals(world) == []


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(world):
    edition_id, review = hold(world)
    deliver(world, answer(review, "note: Would be set\n\napprove"), "1")
    deliver(world, answer(review, "approve", sender="mallory@example.com", name="2"), "2")
    said = read_mailbox(world, "--dry-run")
    assert f"would set the note, then approve it (send it to every reader once): edition {edition_id}" in said
    assert "would refuse: it came from mallory@example.com" in said
    assert status(world, edition_id) == "held" and readers_got(world) == Counter() and refusals(world) == []
    assert actions.draft(world.db, world.weekly).note is None
    assert len(os.listdir(Path(world.settings.mailbox.maildir) / "new")) == 2
    with world.db.engine.connect() as db:
        assert db.execute(sa.select(sa.func.count()).select_from(mail_messages)).scalar() == 0


def test_without_plus_addressing_the_token_travels_in_the_subject(world):
    world.data["mailbox"]["plus_addresses"] = False
    world.reload()
    edition_id, review = hold(world)
    token = address_token(key(world), MAIL_APPROVE, edition_id)
    assert review["Reply-To"] == MAILBOX and review["Subject"].endswith(f"(approve {token})")
    reply = answer(review, "approve")
    assert reply["To"] == MAILBOX and f"approve {token}" in reply["Subject"]
    deliver(world, reply, "1")
    assert f"edition {edition_id}: approved" in read_mailbox(world)
    assert sum(readers_got(world).values()) == 4


def test_killed_after_the_approval_a_second_read_sends_it_once(world):
    """A real `digest mailbox` killed just after the approval (before any send) and after
    the message was applied: read again, it sends every reader the edition once."""
    edition_id, review = hold(world)
    deliver(world, answer(review, "approve"), "1")
    for point in ("approve.approved:1", "mail.applied:1"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_CRASH")}
        died = run_digest(["--config", str(world.config_path), "mailbox"], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, env={**env, "DIGEST_CRASH_AT": point})
        assert died.returncode == -9, (point, died.stderr[-2000:])          # killed there
    assert status(world, edition_id) == "sent"
    assert readers_got(world) == Counter({f"reader{n:05d}@example.org": 1 for n in range(4)})
    read_mailbox(world)
    assert sum(readers_got(world).values()) == 4 and refusals(world) == []
    assert len(outbox(world, "notice-sent-*/*.eml")) == 1


def test_a_note_too_long_is_refused_and_nothing_changes(sqlite_world):
    world = sqlite_world
    actions.set_note(world.db, world.weekly, "Written before.", RUN_AT)
    edition_id, review = hold(world)
    deliver(world, answer(review, "note: " + "far too long " * 500 + "\n\napprove"), "1")
    assert "refused: its note could not be used: the note is 6499 characters" in read_mailbox(world)
    assert status(world, edition_id) == "held" and actions.draft(world.db, world.weekly).note == "Written before."
    assert readers_got(world) == Counter() and len(refusals(world)) == 1


def test_approved_but_its_send_cut_short_the_scheduler_finishes_it(sqlite_world):
    world = sqlite_world
    edition_id, review = hold(world)
    outbox_dir = world.data["sending"]["outbox"]["dir"]
    (world.folder / "not-a-folder").write_text("the relay is down")
    world.data["sending"]["outbox"]["dir"] = str(world.folder / "not-a-folder")
    world.reload()
    deliver(world, answer(review, "approve"), "1")
    said = read_mailbox(world)
    assert f"edition {edition_id}: approved: its send stopped (cannot create" in said
    assert "the scheduler sends it (or `digest approve weekly`)" in said
    assert status(world, edition_id) == "sending" and readers_got(world) == Counter()
    world.data["sending"]["outbox"]["dir"] = outbox_dir                # the relay is back
    world.reload()
    done = actions.tend(world.settings, world.db, datetime.now(UTC))
    assert any("accepted 4" in line for line in done), done
    assert readers_got(world) == Counter({f"reader{n:05d}@example.org": 1 for n in range(4)})
    read_mailbox(world)
    assert sum(readers_got(world).values()) == 4


# ------------------------------------------------------------------ the review mail on a phone

def test_the_review_mail_fits_a_phone_and_shows_how_to_reply(sqlite_world, browser):
    _, review = hold(sqlite_world)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.set_content(review.get_body(("html",)).get_content(), wait_until="load")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390          # no sideways scrolling
    how = page.locator(".reply-how")
    said = "Reply approve to send it or skip to skip it (the word alone on the first line)"
    assert how.is_visible() and said in how.inner_text()
    assert page.get_by_role("link", name="Approve by mail").is_visible()
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "review-mail-phone.png"))
    assert (SHOTS / "review-mail-phone.png").stat().st_size > 10_000


# ------------------------------------------------------------------ the words of a reply

def words_of(text: str) -> replies.Reply:
    return replies.words(replies.own_lines(text))


@pytest.mark.parametrize(("text", "word", "note"), [
    ("Approve.", "approve", None),
    ("  **OK**, thanks\n", "ok", None),
    ("\n\nyes send it\n-- \nnote: in the signature", "yes", None),
    ("On Mon, 6 Nov, Digest <d@x.org> wrote:\n> HELD\n> approve\n\nskip", "skip", None),     # below the quote
    ("Sent from my iPhone\n\napprove", "", None),
    ("note: one\ntwo\n\nsend\n> approve", "send", "one\ntwo"),
    ("note:\n  - a list item\n> quoted\nmore", "more", "- a list item"),
    ("Looks good\nnote: later line\nstill the note\n\nnot the note", "looks", "later line\nstill the note"),
    ("Le mer. 1 nov. 2017, Digest a écrit :\napprove", "", None),                        # unmarked quote below
    ("-----Original Message-----\napprove", "", None),
])
def test_the_first_line_of_a_replys_own_text_decides(text, word, note):
    said = words_of(text)
    assert (said.word, said.note) == (word, note)


@pytest.mark.parametrize(("text", "word"), [
    ("Approve", "approve"), ("ok.", "ok"), ("Yes please", "yes"), ("send!", "send"),
    ("approve\n\nThanks, J", "approve"), ("  **OK**, thanks\n", "ok"), ("Skip.", "skip"),
    ('"Approve", thank you!', "approve"), ("yes - thanks", "yes"),
    ("note: A short week.\n\nSend, please.\nJo", "send"), ("Yes\nnote: not before Friday's thread", "yes"),
    ("ok!\nThanks, J\n\nBut I'd like the big thread first next week, ok?", "ok"),
])
def test_the_word_alone_decides_with_a_full_stop_please_thanks_or_a_sign_off_below(text, word):
    said = words_of(text)
    assert (said.word, said.doubt) == (word, "")


@pytest.mark.parametrize(("text", "doubt"), [
    *((first, told.partition("(it has ")[2].rstrip(")")) for first, told in DOUBTFUL.items()),
    ("yes send it", "other words"), ("ok, don’t send", "“don't”"), ("skip? not sure", "a question mark"),
    ("Approve (hold the second thread)", "“hold”"), ("ok 👍", "other words"), ("ok...", "an ellipsis"),
    ("approve!?", "a question mark"), ("ok. ok", "other words"), ("yes,\nbut not before Friday", "a comma, as if "
                                                                                     "more were to follow"),
    ("ok\nwait, do NOT send yet", "“wait” on the line below"), ("Yes\nIs the 2nd thread fine?", "a question mark on "
                                                                                             "the line below"),
])
def test_a_question_a_doubt_or_more_words_beside_the_word_decide_nothing(text, doubt):
    assert words_of(text).doubt == doubt


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["approve", "ok", "yes", "send", "skip"]),
       st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=60),
       st.sampled_from(["?", " not", " wait", " but", " don't", " do not", " hold", " later", ", send it"]))
def test_a_question_or_another_word_on_the_line_is_never_the_word_alone(word, rest, doubt):
    for line in (f"{word}{doubt}{rest}", f"{word}{rest}{doubt}", f"**{word}**{doubt}"):
        assert replies.doubt(line), line


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000))
def test_whatever_a_reply_quotes_never_decides(quote):
    said = words_of("On Wed, 1 Nov 2017, Digest <d@example.org> wrote:\n" +
                    "\n".join(f"> {line}" for line in quote.splitlines()))
    assert said.word == ""
    html = replies.html_text(f"<div><br></div><blockquote>{quote.replace('<', '&lt;')}</blockquote>")
    assert words_of(html).word == ""


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000))
def test_any_text_is_read_bounded_and_never_raises(text):
    said = words_of(text)
    assert said.word == said.word.casefold() and len(said.line) <= replies.MAX_LINE
    assert replies.html_text(text) is not None


def test_many_parts_and_an_attached_message_are_not_read():
    message = EmailMessage()
    message.make_mixed()
    for _ in range(replies.MAX_PARTS):
        part = EmailMessage()
        part.set_content(b"\0", maintype="application", subtype="octet-stream", disposition="inline")
        message.attach(part)
    last = EmailMessage()
    last.set_content("approve")
    message.attach(last)
    assert replies.read(message).word == ""                          # past the parts walked
    inner = EmailMessage()
    inner.set_content("approve")
    forwarded = EmailMessage()
    forwarded.set_content(inner)                                     # message/rfc822: someone else's words
    assert forwarded.get_content_type() == "message/rfc822" and replies.read(forwarded).word == ""
    attached = EmailMessage()
    attached.set_content("Looks fine")
    attached.add_attachment("approve", filename="approve.txt")
    assert replies.read(attached).word == "looks"


_header_value = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=60)


@settings(max_examples=300, deadline=None)
@example(kind="text/plain", disposition="a;\x00*", encoding="7bit")
@given(_header_value, _header_value, _header_value)
def test_whatever_content_headers_a_part_has_the_reply_is_read_without_raising(kind, disposition, encoding):
    headers = f"Content-Type: {kind}\nContent-Disposition: {disposition}\nContent-Transfer-Encoding: {encoding}\n"
    alone = f"From: x@example.org\n{headers}\napprove\n"
    inside = (f"From: x@example.org\nContent-Type: multipart/mixed; boundary=b\n\n--b\n{headers}\napprove\n--b\n"
              f"Content-Type: text/plain\n\nok\n--b--\n")
    for raw in (alone, inside):
        said = replies.read(email.message_from_bytes(raw.encode(), policy=email.policy.default))
        assert said.word in ("", "approve", "ok")


# ------------------------------------------------------------------ Authentication-Results from strangers

DOMAIN = "onprobation-digest.org"
_comment_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=80).map(
    lambda t: t.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)"))     # escaped as a comment holds them


def _with(*values: str) -> EmailMessage:
    lines = "".join(f"Authentication-Results: {value}\r\n" for value in values)
    return email.message_from_bytes(f"{lines}From: x@y\r\n\r\nhi\r\n".encode("utf-8", "surrogateescape"),
                                    policy=email.policy.default)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=4000))
def test_any_header_value_is_read_without_raising_and_never_passes_without_pass(value):
    value = value.replace("\r", " ").replace("\n", " ")
    found = authresults.results(value)
    assert all(r.method == r.method.lower() and r.result == r.result.lower() for r in found)
    if "pass" not in value.lower():
        assert not authresults.passes(_with(value), DOMAIN, "mx")
    assert isinstance(authresults.why_not(_with(value), DOMAIN, "mx"), str)


@settings(max_examples=200, deadline=None)
@given(_comment_text, _comment_text, _comment_text, st.sampled_from(["dkim", "DKIM/1", "spf"]))
def test_comments_anywhere_do_not_change_a_pass(one, two, three, method):
    prop = "header.d" if method.lower().startswith("dkim") else "smtp.mailfrom"
    value = f"mx.example.net ({one}); {method} ({two}) = pass ({three}) {prop}=editor@{DOMAIN} ({one})"
    assert authresults.passes(_with(value), DOMAIN, "mx.example.net")


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[a-z0-9.-]{1,40}", fullmatch=True), _comment_text)
def test_a_pass_for_another_domain_or_below_the_top_never_counts(other, comment):
    if other.strip(".") == DOMAIN:
        return
    assert not authresults.passes(_with(f"mx; dkim=pass ({comment}) header.d={other}; spf=pass "
                                        f"smtp.mailfrom=x@{other}"), DOMAIN, "mx")
    assert not authresults.passes(_with(f"mx; none ({comment})", f"mx; dkim=pass header.d={DOMAIN}"), DOMAIN, "mx")


def test_hostile_header_shapes():
    for value in ["", ";;;;", "(((((", "\\", '"' * 501, "mx; dkim=pass header.d=\"" + DOMAIN,
                  "mx; dkim=pass header.d=" + "(" * 5000 + DOMAIN, "mx; =pass; dkim=; spf", "x; dkim=pass=pass=pass",
                  "mx; dkim=pass header.d=" + DOMAIN + ";" * 10_000]:
        authresults.results(value)
    assert authresults.passes(_with(f"mx; dkim=pass header.d=\"{DOMAIN}\""), DOMAIN, "mx")
    assert not authresults.passes(_with(f"mx; dkim=pass header.d=({DOMAIN})"), DOMAIN, "mx")   # a comment is no value
    past = "mx; dkim=pass header.d=" + " " * 9000 + DOMAIN
    assert not authresults.passes(_with(past), DOMAIN, "mx")                                # past the bound



SPF = f"spf=pass smtp.mailfrom=editor@{DOMAIN}"


@pytest.mark.parametrize(("value", "passes"), [
    (f"mx; dkim=pass header.d={DOMAIN}; spf=fail smtp.mailfrom=editor@{DOMAIN}", True),   # DKIM for the domain decides
    (f"mx; {SPF}", True),                                                                 # no DKIM: SPF counts
    (f"mx; dkim=none; {SPF}", True),
    (f"mx; dkim=pass header.d=onprobation-digest-org.20230601.gappssmtp.com; {SPF}", True),  # no signature failed
    (f"mx; dkim=fail header.d={DOMAIN}; {SPF}", False),                                   # a failed one: SPF does not
    (f"mx; dkim=fail header.d=other.example; {SPF}", False),                              # stand in for it
    (f"mx; dkim=temperror header.d={DOMAIN}; {SPF}", False),
    (f"mx; dkim=permerror; {SPF}", False),
    (f"mx; dkim=fail header.d={DOMAIN}; dkim=pass header.d={DOMAIN}", True),
    (f"mx; dkim=pass header.d=sub.{DOMAIN}; spf=pass smtp.mailfrom=editor@sub.{DOMAIN}", False),
])
def test_dkim_for_the_editors_domain_first_spf_only_where_no_signature_failed(value, passes):
    assert authresults.passes(_with(value), DOMAIN, "mx") is passes
    assert bool(authresults.why_not(_with(value), DOMAIN, "mx")) is not passes


MICROSOFT = (f"spf=pass (sender IP is 192.0.2.1) smtp.mailfrom={DOMAIN}; dkim=pass (signature was verified) "
             f"header.d={DOMAIN};dmarc=pass action=none header.from={DOMAIN};compauth=pass reason=100")


@pytest.mark.parametrize(("value", "trust", "passes"), [
    (f"mx.google.com; dkim=pass header.d={DOMAIN}", "mx.google.com", True),
    (f"MX.Google.COM. 1; dkim=pass header.d={DOMAIN}", "mx.google.com", True),            # any case, a version
    (f'"mx.google.com"; dkim=pass header.d={DOMAIN}', "MX.GOOGLE.COM", True),
    (f"mx1.example.net; dkim=pass header.d={DOMAIN}", "example.net", True),              # below, on a dot boundary
    (f"evilexample.net; dkim=pass header.d={DOMAIN}", "example.net", False),
    (f"example.net.evil.example; dkim=pass header.d={DOMAIN}", "example.net", False),
    (f"example.net; dkim=pass header.d={DOMAIN}", "mx.example.net", False),              # above: not the one named
    (f"mx.google.com; dkim=pass header.d={DOMAIN}", "", False),                          # nobody trusted
    (MICROSOFT, "none-given", True),                                                      # Microsoft names none
    (MICROSOFT, "mx.google.com", False),
    (f"none-given; dkim=pass header.d={DOMAIN}", "none-given", False),                   # a name, even that one
    (f"mx.google.com; dkim=pass header.d={DOMAIN}", "none-given", False),
    (f"; dkim=pass header.d={DOMAIN}", "none-given", False),                             # an empty name is a name
])
def test_only_a_topmost_header_naming_the_trusted_server_vouches(value, trust, passes):
    assert authresults.passes(_with(value), DOMAIN, trust) is passes
    assert authresults.passes(_with(value, MICROSOFT), DOMAIN, trust) is passes          # what is below: nothing


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["mx.google.com", "example.net", "none-given"]))
def test_a_stranger_naming_any_server_never_passes_for_a_trusted_name_it_is_not_under(server, trust):
    server = server.replace("\r", " ").replace("\n", " ")
    value = f"{server}; dkim=pass header.d={DOMAIN}; spf=pass smtp.mailfrom=editor@{DOMAIN}"
    header = authresults.parse(value)
    if authresults.passes(_with(value), DOMAIN, trust) and trust == "none-given":
        assert header.server is None                                   # it names none (an '=' before the first ';')
    elif authresults.passes(_with(value), DOMAIN, trust):
        assert header.server is not None and (header.server == trust or header.server.endswith(f".{trust}"))
    why = authresults.why_not(_with(value), DOMAIN, trust)
    assert all(char.isprintable() for char in why) and len(why) < 600
