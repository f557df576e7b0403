"""What an outsider's attack on the live surface found, each closed: Gmail's dot spellings
past the per-mailbox limit, a list header that took cubic time, config values that
crashed or hung, a webhook body nested too deep, a 10 MB comment; and a first fetch of
an older blog that stored nothing and said nothing."""

from __future__ import annotations

import base64
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from digest import config
from digest.cli import cli
from digest.errors import ConfigError
from digest.read.ingest import ingest
from digest.read.parse import MAX_COMMENT
from digest.send.subscribers import MAX_COLUMNS, ListFileError, mailbox, read_csv
from digest.web import services
from digest.web.limits import RateLimit

from .conftest import make_settings
from .support import smtp_server
from .support.feedserver import Fault
from .support.world import World
from .test_web_abuse import app_for, confirmations, from_blog, on_site

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


@pytest.fixture
def lite(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", "hardening-test-secret-key-0123456789")
    made = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 3)
    yield made
    made.close()


# ------------------------------------------------------------------ one mailbox, many spellings

def test_gmail_dot_spellings_and_googlemail_are_one_mailbox():
    one = mailbox("victim@gmail.com")
    assert {mailbox(a) for a in ("v.ictim@gmail.com", "vi.c.tim@GMAIL.com", "Victim+x@googlemail.com",
                                 "v.i.c.t.i.m+1@googlemail.com")} == {one}
    assert mailbox("v.ictim@example.org") != mailbox("victim@example.org")      # dots count elsewhere
    assert mailbox("other@gmail.com") != one


def test_sixteen_dot_spellings_from_sixteen_clients_reach_the_inbox_three_times(lite):
    """The attack: v.ictim@, vi.ctim@ ... each from its own client, through the blog's form
    (no token needed, so any web page can make its visitors do it)."""
    client = app_for(lite).test_client()
    spellings = [f"{'victim'[:n]}.{'victim'[n:]}@gmail.com" for n in range(1, 6)]
    spellings += [f"v.i.c.t.i.m+{n}@googlemail.com" for n in range(11)]
    codes = [from_blog(client, address, remote=f"10.1.0.{n}") for n, address in enumerate(spellings)]
    assert codes.count(200) == 3 and len(confirmations(lite)) == 3


def test_a_mailbox_gets_at_most_five_confirmations_a_day_however_slowly_asked(lite):
    app = app_for(lite)
    clock = {"now": 0.0}
    app.extensions["digest"] = replace(services(app), limits=RateLimit(clock=lambda: clock["now"]))
    client = app.test_client()
    codes = []
    for hour in range(8):                          # three an hour would allow 24 a day
        clock["now"] = hour * 3600.0 + 1
        codes.append(on_site(client, f"vic.tim+{hour}@gmail.com", remote=f"10.2.0.{hour}"))
    assert codes == [200] * 5 + [429] * 3
    clock["now"] = 86_400.0 + 2                    # the day is over: the first one has aged out
    assert on_site(client, "victim@gmail.com", remote="10.2.1.1") == 200


def test_fastmail_subdomain_addresses_are_the_users_mailbox():
    assert mailbox("anything@victim.fastmail.com") == mailbox("victim@fastmail.com") == "victim@fastmail.com"
    assert mailbox("x+1@victim.fastmail.fm") == "victim@fastmail.fm"
    assert mailbox("x@victim.example.org") != mailbox("victim@example.org")      # elsewhere a subdomain is a host


def test_one_ipv6_network_is_one_client_however_many_addresses_it_uses(lite):
    """A /64 holds 2**64 addresses: a limit per address would limit nothing."""
    client = app_for(lite).test_client()
    codes = [from_blog(client, f"reader{n}@example.org", remote=f"2001:db8:1:{n:x}::{n + 1:x}")
             for n in range(12)]
    assert codes == [200] * 10 + [429] * 2                       # EMBED_PER_CLIENT for the whole /56
    assert from_blog(client, "other@example.org", remote="2001:db8:2::1") == 200     # another network
    assert from_blog(client, "mapped@example.org", remote="::ffff:10.9.0.1") == 200


def test_a_refused_sign_up_stores_nothing_in_the_limiter():
    limits = RateLimit(per_key=1)
    assert limits.allow_all([("global", 1)])
    size = len(limits.hits)
    for n in range(1000):                                   # refused by the global limit
        assert not limits.allow_all([(f"client:{n}", 5), ("global", 1)])
    assert len(limits.hits) == size


@pytest.mark.parametrize("dev_mode", [True, False])
def test_a_real_backend_sends_no_confirmation_with_forgeable_links(tmp_path, caplog, dev_mode):
    """insecure_dev_mode signs with a key printed in the source: with a real relay behind
    the form, anyone could forge a confirmation link. The form answers 503, mails nothing."""
    controller, recorder = smtp_server.start()
    try:
        world = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 0, backend="smtp",
                      smtp={"host": "127.0.0.1", "port": controller.port}, web={"insecure_dev_mode": dev_mode})
        code = from_blog(app_for(world).test_client(), "reader@example.net")
        assert (code, len(recorder.recipients())) == ((503, 0) if dev_mode else (200, 1))
        assert ("insecure_dev_mode" in caplog.text) is dev_mode
        world.close()
    finally:
        controller.stop()


# ------------------------------------------------------------------ list files

def list_file(tmp_path, header: str, rows: str = "a@example.org\n"):
    path = tmp_path / "weekly.csv"
    path.write_text(header + "\n" + rows, encoding="utf-8")
    return path


def test_a_header_that_repeats_a_name_reads_in_linear_time_and_each_column_keeps_a_name(tmp_path):
    path = list_file(tmp_path, "email," + ",".join(["x"] * (MAX_COLUMNS - 1)),
                     "a@example.org," + ",".join(str(n) for n in range(MAX_COLUMNS - 1)) + "\n")
    started = time.perf_counter()
    [member] = read_csv(path).subscribers
    assert time.perf_counter() - started < 30        # cubic: 2,000 names took 14 s, 4,000 took 100 s
    assert member.extra["x"] == "0" and member.extra[f"x ({MAX_COLUMNS - 1})"] == str(MAX_COLUMNS - 2)


def test_a_header_past_a_sane_number_of_columns_is_one_line(tmp_path):
    path = list_file(tmp_path, "email," + ",".join(["x"] * 100_001))
    with pytest.raises(ListFileError, match=r"line 1: 100002 columns, more than a list file has"):
        read_csv(path)


def run(world: World, *args: str):
    return CliRunner().invoke(cli, ["--config", str(world.config_path), *args])


@pytest.mark.parametrize("target", ["folder", "/dev/zero"])
def test_a_list_file_that_is_a_folder_or_a_device_is_one_line(lite, tmp_path, target):
    where = str(tmp_path / "a-folder") if target == "folder" else target
    if target == "folder":
        (tmp_path / "a-folder").mkdir()
    lite.data["lists"][0]["file"] = where
    lite.save()
    result = run(lite, "subscribers", "list", "weekly", "--sync")
    assert result.exit_code == 1
    kind = "a folder" if target == "folder" else "not a regular file"
    assert result.output.strip().splitlines()[-1] == (f"Error: {where}: {kind}; [[lists]].file in the config file must "
                                                      "name a CSV file (email, name)")
    sent = run(lite, "send", "weekly", "--since", "2017-10-25", "--until", "2017-11-01", "--dry-run")
    assert sent.exit_code == 0 and f"Warning: {where}: {kind}" in sent.output     # the stored members still get it


def test_importing_a_pipe_or_nothing_is_one_line_that_names_the_import(lite, tmp_path):
    import os
    pipe = tmp_path / "weekly.fifo"
    os.mkfifo(pipe)
    result = run(lite, "subscribers", "import", "weekly", str(pipe))           # would block on open
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (f"Error: {pipe}: not a regular file; the file given to "
                                                      "import must name a CSV file (email, name)")
    missing = run(lite, "subscribers", "import", "weekly", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 2 and "nope.csv: no such file; give the CSV file to import" in missing.output


def test_a_list_file_rewritten_while_it_is_read_is_one_line(tmp_path, monkeypatch):
    """Checked whole (UTF-8, CSV), then an editor's save lands a Latin-1 byte mid-read."""
    from digest.send import subscribers
    path = list_file(tmp_path, "email,name", "".join(f"r{n}@example.org,R\n" for n in range(50)))
    checked = subscribers._check_structure

    def check_then_rewrite(where, *rest):
        found = checked(where, *rest)
        where.write_bytes(b"email,name\nr@example.org,Ren\xe9e\n")
        return found
    monkeypatch.setattr(subscribers, "_check_structure", check_then_rewrite)
    with pytest.raises(ListFileError, match=r"weekly.csv: changed while it was being read .*run again"):
        read_csv(path)


# ------------------------------------------------------------------ config values

NUMBERS = [("fetch", "timeout"), ("fetch", "max_bytes"), ("fetch", "backoff"), ("fetch", "max_pages"),
           ("fetch", "deadline"), ("selection", "threads_per_post"), ("selection", "words_weight"),
           ("selection", "star_replies"), ("email", "max_html_bytes"), ("email", "max_comment_words"),
           ("schedule", "misfire_grace_minutes"), ("schedule", "retry_minutes"), ("web", "confirm_max_age_hours"),
           ("web", "webhook_max_age_seconds"), ("sending", "retry_delay_seconds"),
           ("sending", "retry_within_run_seconds"), ("sending", "max_per_second"), ("sending", "max_per_hour"),
           ("sending", "lease_seconds")]


@pytest.mark.parametrize("value", [0, 1e-9, 0.001, -1])
def test_a_rate_too_small_to_finish_is_one_line(value):
    """max_per_second = 1e-9 would wait 30 years between messages: refused, naming the key."""
    with pytest.raises(ConfigError) as raised:
        config.from_dict({"sending": {"max_per_second": value}})
    [problem] = raised.value.problems
    assert problem.startswith("config.toml [sending].max_per_second: ") and "0.01" in problem


@pytest.mark.parametrize("section,key", NUMBERS)
def test_every_number_has_bounds(section, key):
    with pytest.raises(ConfigError) as raised:
        config.from_dict({section: {key: 10**20}})
    assert raised.value.problems == [f"config.toml [{section}].{key}: " + raised.value.problems[0].split(": ", 1)[1]]
    assert "less than or equal" in raised.value.problems[0]


@pytest.mark.parametrize("url,problem", [
    ("https://digest.example.net/?ref=x", "has a ? or # part"),
    ("https://digest.example.net/#top", "has a ? or # part"),
    ("https://digest.example.net?", "has a ? or # part"),
    ("https://editor:pw@digest.example.net", "user name or password"),
    ("ftp://digest.example.net", "not a URL"),
])
def test_a_base_url_that_would_break_every_link_is_one_line(url, problem):
    with pytest.raises(ConfigError) as raised:
        config.from_dict({"web": {"base_url": url}})
    [line] = raised.value.problems
    assert line.startswith("config.toml [web].base_url:") and problem in line


def test_a_base_url_in_capitals_is_the_same_address():
    assert config.from_dict({"web": {"base_url": "HTTPS://digest.example.net/news/"}}).web.base_url == \
        "https://digest.example.net/news"


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.integers(min_value=-(10**30), max_value=10**30), st.floats(allow_nan=True)))
def test_backfill_days_is_a_setting_or_one_line_never_a_crash(value):
    try:
        found = config.from_dict({"sources": [{"name": "s", "url": "https://example.org/feed",
                                               "backfill_days": value}]})
    except ConfigError as error:
        assert error.problems[0].startswith("config.toml [[sources]][0].backfill_days:")
        return
    assert 0 <= found.sources[0].backfill_days <= 36_500


def test_a_huge_backfill_is_one_line_on_fetch(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[[sources]]\nname = "s"\nurl = "https://example.org/feed"\n'
                    "backfill_days = 99999999999999999999\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(path), "fetch"])
    assert result.exit_code == 2 and result.output.startswith("Error: config.toml [[sources]][0].backfill_days")
    assert "Traceback" not in result.output


# ------------------------------------------------------------------ the webhook

def test_a_signed_body_nested_too_deep_is_a_400_not_a_500(lite, monkeypatch):
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", base64.b64encode(public).decode())
    body = ("[" * 200_000 + "]" * 200_000).encode()
    stamp = str(int(time.time()))
    signature = base64.b64encode(key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    answer = app_for(lite).test_client().post(
        "/webhooks/sendgrid", data=body,
        headers={"X-Twilio-Email-Event-Webhook-Signature": signature,
                 "X-Twilio-Email-Event-Webhook-Timestamp": stamp})
    assert answer.status_code == 400 and "JSON list of events" in answer.get_data(as_text=True)


# ------------------------------------------------------------------ the feed's own extremes

def test_a_ten_megabyte_comment_is_kept_cut_and_says_so(db, blog, tmp_path):
    post = next(p for p in blog.data["posts"] if p["comments"])
    post["comments"][0]["paragraphs"] = ["word " * 2_000_000]
    blog.publish()
    settings = make_settings(tmp_path, [{"name": "op", "url": blog.posts_url, "backfill_days": 0}],
                             fetch={"max_bytes": 50_000_000, "retries": 1, "backoff": 0, "timeout": 30})
    report = ingest(settings.sources[0], settings.fetch, db, tmp_path, NOW)
    assert report.error is None
    stored = next(c for c in db.content.iter_comments() if c.key == post["comments"][0]["id"])
    assert len(stored.html) < MAX_COMMENT + 500
    assert stored.text.endswith("word\n[Cut by digest: this comment runs to 9,999,999 characters; the whole of "
                                "it is on the blog.]")


# ------------------------------------------------------------------ a first fetch that finds the blog

def newest(blog, n: int) -> list[dict]:
    return sorted(blog.data["posts"], key=lambda p: p["published"], reverse=True)[:n]


def test_the_first_fetch_of_an_older_blog_keeps_its_newest_posts_and_says_so(db, blog, tmp_path):
    settings = make_settings(tmp_path, [{"name": "op", "url": blog.posts_url, "backfill_days": 30}])
    report = ingest(settings.sources[0], settings.fetch, db, tmp_path, NOW)          # the blog's last post: 2017
    assert report.error is None and report.posts_new == 3
    assert report.warnings[0].startswith("no post in the last 30 days (backfill_days); kept the blog's 3 newest")
    kept = {p["id"] for p in newest(blog, 3)}
    assert {p.key for p in db.content.iter_posts()} == kept
    wanted = {c["id"] for p, c, _ in blog.all_comments() if p["id"] in kept}
    assert wanted and {c.key for c in db.content.iter_comments()} == wanted        # with their comments
    again = ingest(settings.sources[0], settings.fetch, db, tmp_path, NOW)
    assert (again.posts_new, again.comments_new, again.warnings) == (0, 0, [])


def test_a_first_fetch_that_failed_leaves_the_next_one_first(db, blog, tmp_path):
    """The blog was down the first time: the fetch that finally reads it still keeps the
    newest posts rather than reading nothing (the window holds no post)."""
    settings = make_settings(tmp_path, [{"name": "op", "url": blog.posts_url, "backfill_days": 30}])
    blog.server.fail("/feeds/posts/default", Fault(status=500, times=2))
    down = ingest(settings.sources[0], settings.fetch, db, tmp_path, NOW)
    assert down.error is not None and down.posts_new == 0
    report = ingest(settings.sources[0], settings.fetch, db, tmp_path, NOW)
    assert report.error is None and report.posts_new == 3
    assert {p.key for p in db.content.iter_posts()} == {p["id"] for p in newest(blog, 3)}


def test_raising_backfill_days_reads_back_to_it_and_deletes_nothing(db, blog, tmp_path):
    narrow = make_settings(tmp_path, [{"name": "op", "url": blog.posts_url, "backfill_days": 30}])
    ingest(narrow.sources[0], narrow.fetch, db, tmp_path, NOW)
    before = {c.key for c in db.content.iter_comments()}
    wide = make_settings(tmp_path, [{"name": "op", "url": blog.posts_url, "backfill_days": 0}])
    report = ingest(wide.sources[0], wide.fetch, db, tmp_path, NOW)
    assert report.error is None
    assert report.warnings == ["backfill_days = 0 (everything) reaches further back than before: reading back to "
                               "the blog's first post"]
    assert {p.key for p in db.content.iter_posts()} == {p["id"] for p in blog.data["posts"]}
    after = {c.key for c in db.content.iter_comments()}
    assert before < after and after == {c["id"] for _, c, _ in blog.all_comments()}
    quiet = ingest(wide.sources[0], wide.fetch, db, tmp_path, NOW)
    assert (quiet.posts_new, quiet.comments_new, quiet.warnings) == (0, 0, []) and quiet.requests <= 3
