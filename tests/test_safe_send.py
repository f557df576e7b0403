"""Safe first send: with a real backend (a real SMTP server on loopback, the local
SendGrid stand-in), `digest send`, a test copy and the scheduler refuse a config not
ready for readers, in one line naming the setting, the config file and the fix; the
outbox backend (the demo) is never refused."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from digest import config, schedule
from digest.cli import cli
from digest.send.readiness import NotReady, check_ready_to_send, secret_problem

from .support import smtp_server
from .support.processes import run_digest
from .support.world import TEST_SECRET_ENV, World

WEEK = ["--since", "2017-10-25", "--until", "2017-11-01"]


@pytest.fixture
def smtp():
    controller, recorder = smtp_server.start()
    yield controller, recorder
    controller.stop()


@pytest.fixture
def world(tmp_path, smtp):
    controller, _ = smtp
    made = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 3, backend="smtp",
                 smtp={"host": "127.0.0.1", "port": controller.port})
    yield made
    made.close()


def run(world, *args):
    return CliRunner().invoke(cli, ["--config", str(world.config_path), *args])


def change(world, section: str, **values) -> None:
    world.data[section].update(values)
    world.save()


UNREADY = [
    ("web", {"base_url": "http://localhost:8000"}, "[web].base_url", "is a local address readers cannot open"),
    ("web", {"base_url": "http://127.0.0.1:8000"}, "[web].base_url", "is a local address readers cannot open"),
    ("web", {"base_url": "https://digest.example.com"}, "[web].base_url", "is an example address"),
    ("web", {"base_url": "https://news.blog.test"}, "[web].base_url", "is an example address"),
    ("sending", {"from": "Digest <digest@example.org>"}, "[sending].from", "use your own"),
    ("sending", {"from": "Digest <news@mail.example.net>"}, "[sending].from", "use your own"),
    ("web", {"insecure_dev_mode": True}, "[web].insecure_dev_mode", "remove it and export"),
    ("web", {"secret_key_env": "DIGEST_NO_SUCH_SECRET"}, "[web].secret_key_env", "DIGEST_NO_SUCH_SECRET is not set"),
]


@pytest.mark.parametrize(("section", "values", "key", "fix"), UNREADY, ids=[f"{k}-{i}" for i, (_, _, k, _) in
                                                                          enumerate(UNREADY)])
def test_send_refuses_a_config_not_ready_for_real_mail(world, smtp, section, values, key, fix):
    change(world, section, **values)
    result = run(world, "send", "weekly", *WEEK, "--yes")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"Error: {world.config_path} {key}: ")
    assert fix in lines[0] and "the smtp backend sends real mail, so nothing goes out until this is fixed" in lines[0]
    assert smtp[1].messages == []
    assert run(world, "editions", "weekly").output.strip() == "No editions yet for weekly."


def test_a_test_copy_goes_before_the_public_address_exists_but_the_list_does_not(world, smtp):
    """Issue 22: the editor sees the email in their own mailbox, through the real relay,
    before `digest serve` is public; its links say where they point; the list gets nothing."""
    change(world, "web", base_url="http://localhost:8000")
    copy = run(world, "send", "weekly", *WEEK, "--to", "editor@onprobation-digest.org")
    assert copy.exit_code == 0, copy.output
    [warning] = [line for line in copy.output.splitlines() if line.startswith("Warning:")]
    assert "[web].base_url: http://localhost:8000 is a local address readers cannot open: this test copy's " \
           "links (unsubscribe, view on the web) point at it" in warning
    assert [m["to"] for m in smtp[1].messages] == ["editor@onprobation-digest.org"]
    for args in (["--dry-run"], ["--yes"]):
        result = run(world, "send", "weekly", *WEEK, *args)
        assert result.exit_code == 2 and "[web].base_url" in result.output, result.output
    assert len(smtp[1].messages) == 1
    assert run(world, "editions", "weekly").output.strip() == "No editions yet for weekly."


def test_a_test_copy_is_still_refused_from_an_example_sender(world, smtp):
    change(world, "web", base_url="http://localhost:8000")
    change(world, "sending", **{"from": "Digest <digest@example.org>"})
    result = run(world, "send", "weekly", *WEEK, "--to", "editor@onprobation-digest.org")
    assert result.exit_code == 2 and "[sending].from" in result.output and "[web].base_url" not in result.output
    assert smtp[1].messages == []


def test_every_problem_is_named_in_the_one_line(world):
    change(world, "web", base_url="http://localhost:8000", insecure_dev_mode=True)
    change(world, "sending", **{"from": "Digest <digest@example.org>"})
    result = run(world, "send", "weekly", *WEEK, "--yes")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "(then also: [sending].from, [web].insecure_dev_mode)" in result.output


def test_placeholder_secrets(world, monkeypatch):
    assert secret_problem("") == "is not set"
    for placeholder in ("changeme-changeme-changeme", "insecure-dev-key-do-not-use-for-real-mail", "x" * 40,
                        "replace-with-a-real-secret"):
        assert secret_problem(placeholder) == "is a placeholder", placeholder
    assert secret_problem("Zq8-short") == "is too short (9 characters, at least 16)"
    assert secret_problem("kX3vQ9zL2mN8pR4tW6yB") == ""
    monkeypatch.setenv(TEST_SECRET_ENV, "change-me-please-change-me")
    result = run(world, "send", "weekly", *WEEK, "--yes")
    assert result.exit_code == 2 and f"{TEST_SECRET_ENV} is a placeholder" in result.output


def test_a_ready_config_sends(world, smtp):
    result = run(world, "send", "weekly", *WEEK, "--yes")
    assert result.exit_code == 0, result.output
    assert "to 3 subscribers of weekly" in result.output
    assert len(smtp[1].messages) == 3


def test_sendgrid_is_a_real_backend_too(tmp_path):
    settings = config.from_dict({"sending": {"backend": "sendgrid"}, "web": {"insecure_dev_mode": True}},
                                root=tmp_path)
    with pytest.raises(NotReady, match=r"\[web\].base_url: http://localhost:8000 is a local address.*sendgrid"):
        check_ready_to_send(settings.send_settings())


def test_the_demo_outbox_is_never_refused(tmp_path):
    made = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 2)       # localhost, example.org, dev mode
    try:
        result = run(made, "send", "weekly", *WEEK, "--yes")
        assert result.exit_code == 0 and "2 accepted" in result.output, result.output
    finally:
        made.close()


def test_the_scheduler_refuses_to_start_and_its_job_refuses(world, smtp):
    change(world, "web", insecure_dev_mode=True)
    started = run_digest(["--config", str(world.config_path), "schedule"],
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert started.returncode == 2 and "[web].insecure_dev_mode: is true" in started.stderr
    assert len(started.stderr.strip().splitlines()) == 1, started.stderr
    settings = config.load(world.config_path)
    with pytest.raises(NotReady, match=r"insecure_dev_mode"):
        schedule._run(settings, world.db, "weekly", datetime(2017, 11, 1, 9, tzinfo=UTC))
    assert smtp[1].messages == []
