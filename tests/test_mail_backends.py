"""A mail backend in one room. The "postbox" backend (a pickup folder a local MTA delivers
from, as IIS's or Exchange's pickup directory, with an event route of its own) is
declared in this file alone, through digest.backends' public API, and works end to end:
config takes its name, make_mailer builds it, readiness treats it as real, a send runs
the workers it declares, the doctor runs the checks it declares, its events arrive at
POST /webhooks/postbox. A backend that declares nothing gets the strict answer
everywhere, and nothing outside digest/send/mailers/ names a backend."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest import backends, config
from digest.backends import Backend, Events, Relay
from digest.cli import cli
from digest.config import SendSettings
from digest.db import Database
from digest.db.events import Effect
from digest.live import doctor
from digest.models import EVERY_LIST, DeliveryStatus, Edition, Outcome, Reason, email_key
from digest.send import workers
from digest.send.mailers import MailerError, MarkInFlight, make_mailer
from digest.send.message import Recipient, sender, wire
from digest.send.readiness import NotReady, check_ready_for_a_test, check_ready_to_send, check_signed_links
from digest.send.subscribers import read_csv
from digest.signals.webhooks import Forged
from digest.web import create_app

from .support.dns_server import DnsServer, Zones
from .support.world import TEST_SECRET_ENV, World

PACKAGE = Path(__file__).resolve().parent.parent / "digest"
WEEK = ["--since", "2017-10-25", "--until", "2017-11-01"]
DOMAIN = "onprobation-digest.org"
EVENTS_KEY = "POSTBOX_EVENTS_KEY"


# ------------------------------------------------------------------ the postbox backend, whole

class PostboxMailer:
    """One .eml per message into [the config's folder]/postbox, which a local MTA delivers."""

    batch_size = 2
    record_each = False
    made: list[PostboxMailer] = []

    def __init__(self, settings: SendSettings) -> None:
        self.folder, self.origin = pickup(settings), sender(settings)
        if not self.folder.is_dir():
            raise MailerError(f"no pickup folder at {self.folder}; create it (the MTA delivers from there)")
        PostboxMailer.made.append(self)

    def send(self, edition: Edition, recipients: list[Recipient], in_flight: MarkInFlight,
             folder: str) -> Iterator[Outcome]:
        going = set(in_flight([to.delivery_id for to in recipients]))
        for to in (to for to in recipients if to.delivery_id in going):
            data, message_id = wire(edition, self.origin, to, datetime.now(UTC))
            (self.folder / f"{folder}-{to.delivery_id}.eml").write_bytes(data)
            yield Outcome(to.delivery_id, DeliveryStatus.ACCEPTED, message_id)

    def close(self) -> None:
        return None


def pickup(settings: SendSettings) -> Path:
    return settings.path("postbox")


def reach_pickup(settings: SendSettings, env: Mapping[str, str], timeout: float) -> str:
    PostboxMailer(settings)
    return f"the pickup folder {pickup(settings)} is there"


def read(key: str, raw: bytes, headers: Mapping[str, str], max_age: int, now: float) -> list[dict]:
    """The postbox's events: a JSON list, the key in X-Postbox-Key."""
    if headers.get("x-postbox-key") != key:
        raise Forged("Bad key.")
    return json.loads(raw)


def apply(db: Database, event: dict, now: datetime) -> bool:
    effect = Effect(email_key(event["email"]), EVERY_LIST, Reason.BOUNCED, "postbox bounce", event=event["kind"])
    return db.events.apply(f"postbox:{event['id']}", event["kind"], event["email"], effect, now)


POSTBOX = Backend("postbox", PostboxMailer, workers=lambda sending: 3,
                  relay=Relay(reach_pickup, spf_include=lambda sending: "spf.postbox.test", dkim_selectors=("pb1",)),
                  events=Events(__name__, key_env=lambda web: EVENTS_KEY,
                                setup="point the postbox's event hook at {url}; then export {env}"))


# ------------------------------------------------------------------ fixtures

@pytest.fixture
def postbox() -> Iterator[Backend]:
    backends.register(POSTBOX)
    PostboxMailer.made.clear()
    yield POSTBOX
    backends.unregister(POSTBOX.name)


@pytest.fixture
def world(tmp_path: Path, postbox: Backend) -> Iterator[World]:
    made = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 7, backend="postbox")
    yield made
    made.close()


def settings_of(backend: str, tmp_path: Path, **web: object) -> config.Settings:
    return config.from_dict({"sending": {"backend": backend, "from": f"Blog <digest@{DOMAIN}>"},
                             "web": {"base_url": f"https://digest.{DOMAIN}", "secret_key_env": TEST_SECRET_ENV, **web}},
                            root=tmp_path)


def checks(settings: config.Settings, **env: str) -> dict[str, doctor.Check]:
    with DnsServer(Zones({DOMAIN: [("A", "127.0.0.1")]})) as server:
        found = doctor.run(settings, {"DIGEST_NAMESERVER": server.address, **env})
    return {check.check: check for check in found}


# ------------------------------------------------------------------ the postbox, end to end

def test_config_takes_the_names_from_the_registry(postbox, tmp_path):
    assert settings_of("postbox", tmp_path).sending.backend == "postbox"
    with pytest.raises(config.ConfigError) as refused:
        config.from_dict({"sending": {"backend": "carrier-pigeon"}})
    assert refused.value.problems == ["config.toml [sending].backend: must be 'postbox', 'sendgrid', 'smtp' or "
                                      "'outbox'"]


def test_a_name_nobody_registered_is_refused_with_its_key_path():
    with pytest.raises(config.ConfigError) as refused:
        config.from_dict({"sending": {"backend": "postbox"}})
    assert refused.value.problems == ["config.toml [sending].backend: must be 'sendgrid', 'smtp' or 'outbox'"]


def test_a_send_goes_through_the_postbox_with_the_workers_it_declares(world):
    (world.folder / "postbox").mkdir()
    assert workers.workers(world.settings.send_settings()) == 3
    result = CliRunner().invoke(cli, ["--config", str(world.config_path), "send", "weekly", *WEEK, "--yes"])
    assert result.exit_code == 0 and "7 accepted" in result.output, result.output
    written = sorted((world.folder / "postbox").glob("*.eml"))
    assert len(written) == 7 and b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in written[0].read_bytes()
    assert len(PostboxMailer.made) == 3                    # one mailer per declared worker


def test_make_mailer_builds_it_and_its_own_errors_name_the_fix(world):
    with pytest.raises(MailerError, match="no pickup folder at .*postbox; create it"):
        make_mailer(world.settings.send_settings())
    (world.folder / "postbox").mkdir()
    assert isinstance(make_mailer(world.settings.send_settings()), PostboxMailer)


def test_readiness_treats_it_as_real(postbox, tmp_path):
    local = settings_of("postbox", tmp_path, base_url="http://localhost:8000", insecure_dev_mode=True)
    with pytest.raises(NotReady, match=r"\[web\].base_url: .*the postbox backend sends real mail"):
        check_ready_to_send(local.send_settings())
    with pytest.raises(NotReady, match=r"\[web\].insecure_dev_mode"):
        check_signed_links(local.send_settings())
    assert not local.sending.smtputf8                      # it did not say it takes SMTPUTF8


def test_the_doctor_runs_the_checks_it_declares(postbox, tmp_path):
    settings = settings_of("postbox", tmp_path)
    found = checks(settings)
    assert not found["relay"].ok and found["relay"].detail.startswith("no pickup folder at")
    assert found["spf"].fix == f'publish at {DOMAIN}: TXT "v=spf1 include:spf.postbox.test ~all"'
    assert not found["dkim"].ok and f"pb1._domainkey.{DOMAIN}" in found["dkim"].detail
    assert not found["bounces"].ok and found["bounces"].fix == (
        f"point the postbox's event hook at https://digest.{DOMAIN}/webhooks/postbox; then export {EVENTS_KEY}")
    (tmp_path / "postbox").mkdir()
    found = checks(settings, **{EVENTS_KEY: "a key"})
    assert found["relay"].ok and found["relay"].detail == f"the pickup folder {tmp_path / 'postbox'} is there; no " \
                                                          "mail sent"
    assert found["bounces"].ok and f"/webhooks/postbox are read ({EVENTS_KEY} set)" in found["bounces"].detail


def test_its_events_arrive_at_the_route_it_declares(world, monkeypatch):
    client = create_app(world.settings, world.db).test_client()
    bounce = json.dumps([{"id": "b1", "email": "reader00003@example.org", "kind": "bounce"}])
    assert client.post("/webhooks/postbox", data=bounce).status_code == 503          # no key set: nothing read
    monkeypatch.setenv(EVENTS_KEY, "the postbox key")
    assert client.post("/webhooks/postbox", data=bounce, headers={"X-Postbox-Key": "guessed"}).status_code == 403
    answer = client.post("/webhooks/postbox", data=bounce, headers={"X-Postbox-Key": "the postbox key"})
    assert answer.status_code == 200 and answer.get_data(as_text=True) == "1 applied"
    assert world.db.lists.is_suppressed("weekly", "reader00003@example.org")
    assert client.post("/webhooks/smtp", data=bounce).status_code == 404            # declares no route


# ------------------------------------------------------------------ nothing declared: the strict answer

def bare_mailer(settings: SendSettings) -> PostboxMailer:
    return PostboxMailer(settings)


@pytest.fixture
def bare() -> Iterator[Backend]:
    declared = backends.register(Backend("bare", bare_mailer))
    yield declared
    backends.unregister("bare")


def test_a_backend_that_declares_nothing_is_held_to_every_check(bare, tmp_path):
    local = settings_of("bare", tmp_path, base_url="http://localhost:8000")
    with pytest.raises(NotReady, match="the bare backend sends real mail"):
        check_ready_to_send(local.send_settings())
    assert check_ready_for_a_test(local.send_settings())                 # warned: its links are local
    assert workers.workers(local.send_settings()) == 1
    assert not local.sending.smtputf8 and not local.send_settings().smtputf8
    (tmp_path / "list.csv").write_text("email\njosé@example.org\nreader@example.org\n", encoding="utf-8")
    read = read_csv(tmp_path / "list.csv", local.sending.smtputf8)
    assert [m.email for m in read.subscribers] == ["reader@example.org"] and read.problems
    found = checks(settings_of("bare", tmp_path))
    assert [name for name in ("relay", "spf", "dkim", "bounces") if found[name].ok] == []
    assert "declares no way to check its relay" in found["relay"].detail


def test_a_name_that_is_no_longer_registered_is_held_to_every_check(bare, tmp_path):
    local = settings_of("bare", tmp_path, insecure_dev_mode=True).send_settings()
    backends.unregister("bare")
    assert backends.sends_to_people("bare") and not backends.takes_smtputf8("bare")
    with pytest.raises(NotReady, match="insecure_dev_mode"):
        check_signed_links(local)
    with pytest.raises(config.ConfigError, match=r"\[sending\].backend: 'bare' is not a mail backend"):
        make_mailer(local)


def test_the_built_in_backends_say_what_they_are():
    said = {name: (backends.get(name).real, backends.get(name).smtputf8) for name in backends.names()}
    assert said == {"sendgrid": (True, False), "smtp": (True, True), "outbox": (False, True)}
    assert backends.get("sendgrid").events is not None and backends.get("smtp").bounce_mailbox


def test_nothing_outside_the_mailers_names_a_backend():
    """No `backend == "smtp"`, `in ("smtp", "sendgrid")` or {"sendgrid": ...} outside
    digest/send/mailers/: what differs is declared there and read through the registry."""
    names, found = set(backends.names()), []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name == "mailers":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            compared = [*node.comparators, node.left] if isinstance(node, ast.Compare) else \
                list(node.keys) if isinstance(node, ast.Dict) else []
            flat = [e for c in compared for e in (c.elts if isinstance(c, ast.Tuple | ast.List | ast.Set) else [c])]
            found += [f"{path.relative_to(PACKAGE)}:{node.lineno} {e.value!r}" for e in flat
                      if isinstance(e, ast.Constant) and e.value in names]
    assert found == []
