"""Every table digest keeps, declared once. Alembic revisions (migrations/) change them.

APScheduler's own job table (apscheduler_jobs) is created and owned by APScheduler.
"""

from __future__ import annotations

import sqlalchemy as sa

from .types import UTCDateTime

metadata = sa.MetaData()

# ------------------------------------------------------------------ what was read

sources = sa.Table(
    "sources", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("kind", sa.String(20)),
    sa.Column("detected_kind", sa.String(20)),
    sa.Column("comments_url", sa.Text),
    sa.Column("horizon", UTCDateTime),              # nothing older is read (backfill window)
    sa.Column("last_fetch_at", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("reread_posts", sa.Boolean, nullable=False, default=False),   # a posts page was missed last time
)

http_cache = sa.Table(
    "http_cache", metadata,
    sa.Column("url", sa.String(2000), primary_key=True),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("checked_at", UTCDateTime),
)

posts = sa.Table(
    "posts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source_id", sa.ForeignKey("sources.id"), nullable=False),
    sa.Column("key", sa.String(500), nullable=False),
    sa.Column("original_key", sa.Text),             # the feed's id when key is its hash (too long)
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("published", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.Column("html", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("comments_total", sa.Integer),
    sa.Column("comments_feed", sa.Text),
    sa.Column("stub", sa.Boolean, nullable=False, default=False),
    sa.Column("hash", sa.String(40), nullable=False),
    sa.UniqueConstraint("source_id", "key"),
)

comments = sa.Table(
    "comments", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source_id", sa.ForeignKey("sources.id"), nullable=False),
    sa.Column("key", sa.String(500), nullable=False),
    sa.Column("original_key", sa.Text),             # the feed's id when key is its hash (too long)
    sa.Column("post_key", sa.String(500), nullable=False),
    sa.Column("declared_parent", sa.String(500)),   # as the feed says
    sa.Column("parent_key", sa.String(500)),        # as threaded: NULL when top level
    sa.Column("orphan", sa.Boolean, nullable=False, default=False),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("author_uri", sa.Text),
    sa.Column("published", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("html", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("removed", sa.Boolean, nullable=False, default=False),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    sa.Column("hash", sa.String(40), nullable=False),
    sa.UniqueConstraint("source_id", "key"),
    sa.Index("ix_comments_post", "source_id", "post_key"),
    sa.Index("ix_comments_published", "published"),
)

# ------------------------------------------------------------------ the editor's picks

picks = sa.Table(
    "picks", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("list_name", sa.String(100), nullable=False),
    sa.Column("comment_key", sa.String(500), nullable=False),
    sa.Column("action", sa.String(10), nullable=False),      # PickAction
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime),                       # set when an edition with it is sent
    sa.UniqueConstraint("list_name", "comment_key", "used_at"),
)

# ------------------------------------------------------------------ lists and suppressions

subscribers = sa.Table(
    "subscribers", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("list_name", sa.String(100), nullable=False),
    sa.Column("email_key", sa.String(320), nullable=False),    # local part as given, domain lower-cased
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("name", sa.Text, nullable=False, default=""),
    sa.Column("extra", sa.Text, nullable=False, default="{}"),  # the CSV's other columns, as JSON
    sa.Column("origin", sa.String(10), nullable=False),         # Origin
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("synced", sa.Integer, nullable=False, default=0),   # the list-file sync that last saw it
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("retired_at", UTCDateTime),
    sa.Column("row_hash", sa.BigInteger),                       # the list-file row it was read from (64-bit)
    sa.UniqueConstraint("list_name", "email_key"),
    sa.Index("ix_subscribers_row_hash", "list_name", "row_hash"),
    sa.Index("ix_subscribers_synced", "list_name", "synced"),
)

suppressions = sa.Table(
    "suppressions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email_key", sa.String(320), nullable=False, index=True),
    sa.Column("list_name", sa.String(100), nullable=False, default="*"),   # "*" = every list
    sa.Column("reason", sa.String(20), nullable=False),    # Reason
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("email_key", "list_name"),
)

list_files = sa.Table(
    "list_files", metadata,
    sa.Column("list_name", sa.String(100), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),      # of the file as last synced
    sa.Column("size", sa.BigInteger),                         # its bytes: a file grown past them may be appended to
    sa.Column("synced_at", UTCDateTime, nullable=False),
)

confirmations = sa.Table(
    "confirmations", metadata,                                # subscription links already used
    sa.Column("token_hash", sa.String(64), primary_key=True),   # sha256 of the signed token
    sa.Column("list_name", sa.String(100), nullable=False),
    sa.Column("email_key", sa.String(320), nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=False),
)

# ------------------------------------------------------------------ editions and the ledger

editions = sa.Table(
    "editions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("list_name", sa.String(100), nullable=False),
    sa.Column("since", UTCDateTime, nullable=False),
    sa.Column("until", UTCDateTime, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("html", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("tokens", sa.Text, nullable=False),        # JSON: html and text tokens
    sa.Column("web_url", sa.Text, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),  # EditionStatus
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("note", sa.Text),                          # the editor's note (Markdown) as frozen
    sa.Column("threads", sa.Text),                       # JSON: the keys of the threads' top comments shown
    sa.Column("built_at", UTCDateTime),                  # picks and draft made up to then are in it
    sa.Column("held_at", UTCDateTime),                   # held for the editor's approval then
    sa.Column("decided_at", UTCDateTime),                # approved or skipped then
    sa.Column("decision", sa.String(30)),                # approved, skipped, timed out: sent, timed out: skipped
    sa.Column("review_sent_at", UTCDateTime),            # the editor was sent the held edition to review
    sa.Column("posted_at", UTCDateTime),                 # mailed to the blog's [publish].mail_to as a post
    sa.Index("ix_editions_list", "list_name", "since", "until"),
)

drafts = sa.Table(                                       # what the editor set for a list's next edition
    "drafts", metadata,
    sa.Column("list_name", sa.String(100), primary_key=True),
    sa.Column("note", sa.Text),                          # Markdown; NULL: none
    sa.Column("subject", sa.Text),                       # NULL: the list's own subject
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

deliveries = sa.Table(
    "deliveries", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("edition_id", sa.ForeignKey("editions.id"), nullable=False),
    sa.Column("subscriber_id", sa.Integer, nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("email_key", sa.String(320), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),          # DeliveryStatus
    sa.Column("message_id", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("updated_at", UTCDateTime),
    sa.Column("event", sa.String(20)),                 # the provider's last word: delivered, deferred...
    sa.Column("event_at", UTCDateTime),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),   # "try again later" answers so far
    sa.Column("next_attempt_at", UTCDateTime),                     # a deferred message waits until then
    sa.Column("claimed_by", sa.String(200)),           # the sender (host:pid:...) whose batch holds the row...
    sa.Column("claimed_until", UTCDateTime),           # ...until then, renewed while it works (revision 0011)
    sa.UniqueConstraint("edition_id", "subscriber_id"),
    sa.Index("ix_deliveries_order", "edition_id", "id"),           # no index holds status: a row changes
    sa.Index("ix_deliveries_address", "edition_id", "email_key"),  # status in place (revision 0007)
    postgresql_with={"fillfactor": 50},
)

# ------------------------------------------------------------------ processes

locks = sa.Table(
    "locks", metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("acquired_at", UTCDateTime, nullable=False),
)

runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("list_name", sa.String(100), nullable=False, index=True),
    sa.Column("scheduled_for", UTCDateTime),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("outcome", sa.Text, nullable=False),
)

provider_events = sa.Table(
    "provider_events", metadata,
    sa.Column("sg_event_id", sa.String(200), primary_key=True),
    sa.Column("event", sa.String(30), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
)

# ------------------------------------------------------------------ what subscribers did

links = sa.Table(                                        # every link of a sent edition that leads away from digest
    "links", metadata,
    sa.Column("edition_id", sa.ForeignKey("editions.id"), primary_key=True),
    sa.Column("n", sa.Integer, primary_key=True, autoincrement=False),   # its number in the edition, from 1
    sa.Column("url", sa.Text, nullable=False),           # where the click goes: exactly the edition's link
    sa.Column("thread", sa.String(500)),                 # the key of the thread's top comment; NULL: a post, the blog
    sa.Column("post", sa.String(500)),                   # the key of the post it belongs to, when it does
    sa.Column("position", sa.Integer),                   # the thread's place in the edition (1: first shown)
    sa.Column("clicks", sa.Integer, nullable=False, server_default="0"),   # counted; never who clicked
)

bounce_messages = sa.Table(                              # each message of the bounce mailbox, read once
    "bounce_messages", metadata,
    sa.Column("message_id", sa.String(250), primary_key=True),   # its Message-ID (a hash when long or absent)
    sa.Column("kind", sa.String(12), nullable=False),    # hard, soft, complaint, auto-reply, unknown
    sa.Column("email_key", sa.String(320)),              # the recipient it is about, when known
    sa.Column("edition_id", sa.Integer),
    sa.Column("delivery_id", sa.Integer),
    sa.Column("status", sa.String(20)),                  # the DSN's Status (5.1.1) or the report's type
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Index("ix_bounce_messages_edition", "edition_id", "kind"),
    sa.Index("ix_bounce_messages_reader", "email_key", "edition_id"),
)

APSCHEDULER_JOBS = "apscheduler_jobs"

# ------------------------------------------------------------------ the editor's sessions, welcomes

editor_sessions = sa.Table(                              # a login; the cookie names the row
    "editor_sessions", metadata,
    sa.Column("id", sa.String(64), primary_key=True),    # SHA-256 of the cookie's token, never the token
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime),                  # logout
)

welcomes = sa.Table(                                     # the welcome email after confirmation, sent once
    "welcomes", metadata,
    sa.Column("list_name", sa.String(100), primary_key=True),
    sa.Column("email_key", sa.String(320), primary_key=True),
    sa.Column("sent_at", UTCDateTime, nullable=False),
)


# ------------------------------------------------------------------ digest doctor's findings

checks = sa.Table(                                       # each run of the checks a real send depends on
    "checks", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ran_at", UTCDateTime, nullable=False),
    sa.Column("ran_by", sa.String(50), nullable=False),   # "doctor" (the command) or "schedule" (at its start)
    sa.Column("failed", sa.Integer, nullable=False),
    sa.Column("results", sa.Text, nullable=False),        # JSON: [{check, ok, detail, fix}, ...]
)


# ------------------------------------------------------------------ the editor's desk: orders and sign-ups

orders = sa.Table(                                       # what the web asked the scheduler to carry out
    "orders", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("list_name", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),         # "send" a period, "deliver" an approved edition
    sa.Column("since", UTCDateTime),
    sa.Column("until", UTCDateTime),
    sa.Column("edition_id", sa.Integer),
    sa.Column("status", sa.String(10), nullable=False),       # waiting, running, done, failed
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("outcome", sa.Text),
    sa.Index("ix_orders_status", "status", "id"),
)

signups = sa.Table(                                      # confirmation mails sent, not yet confirmed
    "signups", metadata,
    sa.Column("list_name", sa.String(100), primary_key=True),
    sa.Column("email_key", sa.String(320), primary_key=True),
    sa.Column("asked_at", UTCDateTime, nullable=False),
)

mail_messages = sa.Table(                                # each message of the mailbox read in mail mode, applied once
    "mail_messages", metadata,
    sa.Column("message_id", sa.String(250), primary_key=True),   # its Message-ID (a hash when long or absent)
    sa.Column("kind", sa.String(12), nullable=False),    # subscribe, unsubscribe, confirm, approve
    sa.Column("outcome", sa.Text, nullable=False, server_default=""),   # what it did, one line
    sa.Column("kept", sa.Boolean, nullable=False, server_default=sa.false()),   # left flagged for the editor
    sa.Column("address", sa.String(320)),                # the reader (or the editor) it was about, when known
    sa.Column("list_name", sa.String(100)),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Index("ix_mail_messages_kept", "kind", "kept", "received_at"),
)
mail_signups = sa.Table(                                 # a request to subscribe by mail, until confirmed by reply
    "mail_signups", metadata,
    sa.Column("id", sa.Integer, primary_key=True),      # the confirm token names it
    sa.Column("list_name", sa.String(100), nullable=False),
    sa.Column("email_key", sa.String(320), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("name", sa.Text, nullable=False, server_default=""),
    sa.Column("message_id", sa.String(250), nullable=False, unique=True),   # the request's own: one row per mail
    sa.Column("asked_at", UTCDateTime, nullable=False),
    sa.Column("confirm_sent_at", UTCDateTime),          # the confirmation went (NULL: still to send)
    sa.Column("confirmed_at", UTCDateTime),
    sa.Index("ix_mail_signups_asker", "email_key", "asked_at"),
)
