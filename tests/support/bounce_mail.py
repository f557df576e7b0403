"""Messages a bounce mailbox receives, written as the mail servers that send them write
them: a delivery status notification (RFC 3464), an abuse report (ARF, RFC 5965), an
out-of-office reply, Exim's plain-words bounce; and a world that sent an edition over
real SMTP with VERP return paths, so each bounce can be addressed as the real one would."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from digest import actions

from . import smtp_server
from .world import World

RETURN_PATH = "bounces@onprobation-digest.org"
FROM = "digest@onprobation-digest.org"


def dsn(verp: str, recipient: str, status: str, original_id: str = "", action: str = "failed") -> bytes:
    diagnostic = {"5": "550 5.1.1 The email account that you tried to reach does not exist",
                  "4": "452 4.2.2 The email account that you tried to reach is over quota",
                  "2": "250 2.0.0 OK"}[status[0]]
    return f"""Return-Path: <>
Delivered-To: {verp}
Received: from mx.example.net by mail.onprobation-digest.org; Wed, 1 Nov 2017 07:05:00 +0000
From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>
To: {verp}
Subject: Undelivered Mail Returned to Sender
Date: Wed, 1 Nov 2017 07:05:00 +0000
Message-ID: <{uuid.uuid4().hex}@mx.example.net>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="DSN-BOUNDARY"

--DSN-BOUNDARY
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.net.
I'm sorry to have to inform you that your message could not be delivered.

--DSN-BOUNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Wed, 1 Nov 2017 07:04:58 +0000

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; gmail-smtp-in.l.google.com
Diagnostic-Code: smtp; {diagnostic}

--DSN-BOUNDARY
Content-Type: text/rfc822-headers

Return-Path: <{verp}>
From: On Probation digest <{FROM}>
To: {recipient}
Subject: On Probation: the week's discussion
Message-ID: {original_id or f"<{uuid.uuid4().hex}@onprobation-digest.org>"}

--DSN-BOUNDARY--
""".replace("\n", "\r\n").encode()


def arf(verp: str, recipient: str, redacted: bool = True) -> bytes:
    """An abuse report as Yahoo's and Microsoft's feedback loops send it: the recipient
    redacted, the original's envelope sender (our VERP address) kept."""
    shown = "[redacted]@example.org" if redacted else recipient
    return f"""From: Feedback Loop <feedbackloop@comcast.example>
To: {RETURN_PATH}
Subject: FW: On Probation: the week's discussion
Date: Thu, 2 Nov 2017 10:00:00 +0000
Message-ID: <{uuid.uuid4().hex}@fbl.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ARF-BOUNDARY"

--ARF-BOUNDARY
Content-Type: text/plain; charset="US-ASCII"

This is an email abuse report for an email message received from IP 192.0.2.1.

--ARF-BOUNDARY
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <{verp}>
Original-Rcpt-To: <{shown}>
Arrival-Date: Wed, 1 Nov 2017 07:05:00 +0000
Source-IP: 192.0.2.1

--ARF-BOUNDARY
Content-Type: message/rfc822
Content-Disposition: inline

From: On Probation digest <{FROM}>
To: {shown}
Subject: On Probation: the week's discussion
Message-ID: <{uuid.uuid4().hex}@onprobation-digest.org>

(the message, redacted)
--ARF-BOUNDARY--
""".replace("\n", "\r\n").encode()


def out_of_office(sender: str) -> bytes:
    return f"""From: {sender}
To: {FROM}
Subject: Out of Office: back on Monday
Date: Wed, 1 Nov 2017 07:06:00 +0000
Message-ID: <{uuid.uuid4().hex}@example.org>
Auto-Submitted: auto-replied
X-Autoreply: yes

I am away until Monday with no access to email.
""".replace("\n", "\r\n").encode()


def exim_bounce(verp: str, recipient: str) -> bytes:
    """Exim's default: no multipart/report, the reason in words."""
    return f"""Return-Path: <>
Delivered-To: {verp}
From: Mail Delivery System <Mailer-Daemon@mail.example.co.uk>
To: {verp}
Subject: Mail delivery failed: returning message to sender
Message-ID: <{uuid.uuid4().hex}@mail.example.co.uk>
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  {recipient}
    host mx.example.co.uk [192.0.2.7]
    SMTP error from remote mail server after RCPT TO:<{recipient}>:
    550 5.1.1 <{recipient}>: Recipient address rejected: User unknown
""".replace("\n", "\r\n").encode()


def a_person_writing() -> bytes:
    return f"""From: Probation Officer <po@example.gov.uk>
To: {FROM}
Subject: Re: On Probation: the week's discussion
Message-ID: <{uuid.uuid4().hex}@example.gov.uk>

Thanks for this week's digest; the second thread was the best.
""".replace("\n", "\r\n").encode()


@dataclass
class BounceWorld:
    world: World
    smtp: tuple[object, smtp_server.Recorder]
    maildir: Path

    def verp_of(self, address: str, edition: int = -1) -> str:
        """The envelope sender the relay saw for the message to address (the n-th edition's)."""
        seen = [r.mail_from for r in self.smtp[1].received if address in r.rcpt_tos]
        return seen[edition]

    def deliver(self, raw: bytes, name: str) -> Path:
        temporary = self.maildir / "tmp" / name
        temporary.write_bytes(raw)
        target = self.maildir / "new" / name
        temporary.replace(target)
        return target

    def send(self, since: str, until: str) -> int:
        from datetime import date

        from digest.write.edition import period
        start, end = period(self.world.weekly, self.world.since, date.fromisoformat(since),
                            date.fromisoformat(until))
        report = actions.send_edition(self.world.settings, self.world.db, self.world.weekly, start, end)
        return report.edition_id

    def close(self) -> None:
        self.world.close()
        self.smtp[0].stop()


def bounce_world(tmp_path: Path, db_url: str, readers: int = 6, **bounces: object) -> BounceWorld:
    controller, recorder = smtp_server.start()
    maildir = tmp_path / "bounces-maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    world = World(tmp_path, db_url, readers, backend="smtp", smtp={"host": "127.0.0.1", "port": controller.port})
    world.data["bounces"] = {"return_path": RETURN_PATH, "maildir": str(maildir), **bounces}
    world.reload()
    return BounceWorld(world, (controller, recorder), maildir)


def reader(n: int) -> str:
    return f"reader{n:05d}@example.org"


def fill(mailbox: BounceWorld) -> dict[str, Path]:
    """What comes back from the first edition: one message of each kind, and a person's."""
    verp = mailbox.verp_of
    return {
        "hard": mailbox.deliver(dsn(verp(reader(0)), reader(0), "5.1.1"), "1.hard"),
        "soft": mailbox.deliver(dsn(verp(reader(1)), reader(1), "4.2.2"), "2.soft"),
        "complaint": mailbox.deliver(arf(verp(reader(2)), reader(2)), "3.arf"),
        "auto-reply": mailbox.deliver(out_of_office(reader(3)), "4.ooo"),
        "exim": mailbox.deliver(exim_bounce(verp(reader(4)), reader(4)), "5.exim"),
        "unknown": mailbox.deliver(a_person_writing(), "6.person"),
    }
