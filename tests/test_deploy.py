"""deploy/: the files that run digest in production, checked with the tools that will run
them where those exist here (systemd-analyze, Caddy), and the rest read as YAML and
Dockerfile instructions against the project's own files. The test of record: Debian's
Caddy with its internal CA in front of a real `digest serve`, a real browser signing up
and unsubscribing through it, and `digest doctor` finding this instance at its public name."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner

from digest.cli import cli
from digest.web import create_app

from .conftest import IN_CI
from .support.dns_server import DnsServer, Zones
from .support.smtp_server import free_port
from .support.world import World
from .test_browser import CHROMIUM, FLAGS

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NAME = "digest.onprobation-digest.org"
SECRET = "deploy-test-secret-Zq8vL2mN8pR4tW6y"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        reason = f"{name} is not installed (Debian: apt-get install {name}); .ci/run installs it"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: this test must run)")
        pytest.skip(reason)
    return found


# ------------------------------------------------------------------ the files

def test_the_systemd_units_verify(tmp_path):
    analyze = _tool("systemd-analyze")
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        text = unit.read_text(encoding="utf-8")
        assert "ProtectSystem=strict" in text and "EnvironmentFile=/etc/digest/env" in text
        assert re.search(r"^User=digest$", text, re.MULTILINE) or "DynamicUser=yes" in text
        here = tmp_path / unit.name             # the installed program's path, pointed at this one
        here.write_text(text.replace("/opt/digest/bin/digest", str(Path(sys.executable).parent / "digest")))
        done = subprocess.run([analyze, "verify", str(here)], capture_output=True, text=True, timeout=60)
        complaints = [line for line in (done.stdout + done.stderr).splitlines() if here.name in line]
        assert done.returncode == 0 and complaints == [], done.stdout + done.stderr
    assert {u.name for u in (DEPLOY / "systemd").glob("*.service")} == {"digest-serve.service",
                                                                        "digest-schedule.service"}


def test_compose_runs_serve_schedule_and_caddy_from_one_image_with_sqlite_on_a_volume():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"serve", "schedule", "caddy", "postgres"} <= set(services)
    assert services["serve"]["command"][:2] == ["digest", "serve"] and services["schedule"]["command"] == [
        "digest", "schedule"]
    for name in ("serve", "schedule"):                 # the anchor merged: one image, the data volume, the secrets
        assert services[name]["image"] == "digest:latest" and "data:/data" in services[name]["volumes"]
        assert services[name]["env_file"] == ".env" and services[name]["restart"] == "unless-stopped"
    assert services["schedule"]["healthcheck"] == {"disable": True}    # the image's check asks :8000, not here
    assert "healthcheck" not in services["serve"]                          # the image's own check applies
    build = services["serve"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in services["caddy"]["volumes"]
    assert services["caddy"]["environment"]["DIGEST_UPSTREAM"] == "serve:8000"
    assert services["postgres"]["profiles"] == ["postgres"] and "ports" not in services["postgres"]
    named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if not v.startswith(".")}
    assert named <= set(compose["volumes"])


def test_the_env_example_names_every_secret_the_settings_read():
    names = {line.split("=")[0] for line in (DEPLOY / "env.example").read_text().splitlines()
             if line and not line.startswith("#")}
    from digest import config
    web, sending = config.Web(), config.Sending()
    assert {web.secret_key_env, web.editor_password_env, web.webhook_public_key_env,
            sending.sendgrid.api_key_env, sending.smtp.password_env, "DIGEST_DOMAIN"} <= names


def test_the_dockerfile_installs_the_wheel_and_runs_as_a_user():
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    for line in lines:
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is not in the project"
    assert any(line.startswith("RUN pip wheel") for line in lines)
    assert any(line.startswith("RUN pip install") and "/wheels/*.whl" in line for line in lines)
    assert "USER digest" in lines and lines[-1].startswith('CMD ["digest", "serve"')
    assert lines.index("USER digest") > max(i for i, line in enumerate(lines) if line.startswith("RUN "))


def test_its_healthcheck_path_answers(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)
    world = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 1)
    answer = create_app(world.settings, world.db).test_client().get("/health")
    assert answer.status_code == 200 and answer.json["ok"] is True and len(answer.json["instance"]) == 24
    assert "/health" in (DEPLOY / "Dockerfile").read_text()
    world.close()


# ------------------------------------------------------------------ who is believed about the client

def test_forwarded_headers_are_believed_only_from_a_trusted_proxy(tmp_path, monkeypatch):
    """A client that claims another address in X-Forwarded-For gets no new per-client
    allowance; through the proxy named in [web].trusted_proxies, each client is itself."""
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)
    world = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 1, web={"trusted_proxies": ["10.9.0.1"]})
    client = create_app(world.settings, world.db).test_client()

    def ask(n: int, remote: str, claimed: str) -> int:
        return client.post("/subscribe/weekly/from-blog", data={"email": f"r{n}@example.net"},
                           environ_base={"REMOTE_ADDR": remote}, headers={"X-Forwarded-For": claimed}).status_code

    forged = [ask(n, "203.0.113.5", f"198.51.100.{n}") for n in range(12)]      # not a proxy: one client
    assert forged == [200] * 10 + [429] * 2
    proxied = [ask(100 + n, "10.9.0.1", f"198.51.100.{n}") for n in range(12)]  # the proxy: twelve clients
    assert proxied == [200] * 12
    world.close()


# ------------------------------------------------------------------ Caddy in front, a browser outside

def _wait_for(url: str, **options) -> None:
    for _ in range(100):
        try:
            httpx.get(url, timeout=1, **options)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


@contextmanager
def caddy_in_front(world: World, tmp_path: Path, https: int, *commands: list[str]):
    """`digest serve` (and any other digest commands, e.g. the scheduler) for world, with
    Debian's Caddy in front of it on https, its internal CA; yields Caddy's root certificate."""
    caddy = _tool("caddy")
    http, app = free_port(), free_port()
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "caddy-data"), "XDG_CONFIG_HOME": str(tmp_path / "caddy-cfg"),
           "HOME": str(tmp_path), "DIGEST_DOMAIN": NAME, "DIGEST_UPSTREAM": f"127.0.0.1:{app}"}
    config = tmp_path / "Caddyfile"
    config.write_text("{\n\tadmin off\n\tlocal_certs\n\tskip_install_trust\n"
                      f"\thttp_port {http}\n\thttps_port {https}\n}}\nimport {DEPLOY / 'Caddyfile'}\n")
    digest = [sys.executable, "-m", "digest.cli", "--config", str(world.config_path)]
    processes = [subprocess.Popen([*digest, "serve", "--port", str(app)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)]
    processes += [subprocess.Popen([*digest, *command], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                  for command in commands]
    processes.append(subprocess.Popen([caddy, "run", "--config", str(config), "--adapter", "caddyfile"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    root = tmp_path / "caddy-data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    try:
        _wait_for(f"http://127.0.0.1:{app}/health")
        for _ in range(100):
            if root.exists():
                break
            time.sleep(0.1)
        yield root
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture
def behind_caddy(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)
    https = free_port()
    base = f"https://{NAME}:{https}"
    world = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 2,
                  web={"base_url": base, "trusted_proxies": ["127.0.0.1"], "insecure_dev_mode": False})
    with caddy_in_front(world, tmp_path, https) as root:
        yield world, base, https, root
    world.close()


def _mail(world: World, pattern: str) -> list[email.message.EmailMessage]:
    paths = sorted((world.folder / ".." / "demo" / "outbox").resolve().glob(pattern))
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in paths]


def test_caddy_serves_digest_over_https_and_a_browser_subscribes_and_unsubscribes(behind_caddy, chromium, monkeypatch):
    world, base, https, root = behind_caddy
    with httpx.Client(verify=ssl.create_default_context(cafile=str(root)), timeout=10) as client:   # Caddy's CA
        answer = client.get(f"https://127.0.0.1:{https}/health", headers={"Host": NAME},
                            extensions={"sni_hostname": NAME})
    assert answer.status_code == 200 and answer.json()["ok"] is True

    # A Chromium of its own (its host resolver maps the public name to loopback), from the
    # run's Playwright: two Playwrights in one process cannot be.
    browser = chromium.browser_type.launch(executable_path=CHROMIUM,
                                           args=[*FLAGS, f"--host-resolver-rules=MAP {NAME} 127.0.0.1"])
    try:
        page = browser.new_page(ignore_https_errors=True, viewport={"width": 390, "height": 844})
        page.goto(f"{base}/subscribe/weekly")
        page.fill("input[name=email]", "through.caddy@example.net")
        page.click("button[type=submit]")
        assert "Check your inbox" in page.content()
        [confirmation] = _mail(world, "confirm-*/*.eml")
        link = re.search(r"https://\S+/confirm/\S+", confirmation.get_body(("plain",)).get_content()).group(0)
        assert link.startswith(f"{base}/confirm/")
        page.goto(link)
        page.click("button[type=submit]")
        assert "will get the next edition" in page.content()
        [welcome] = _mail(world, "welcome-*/*.eml")
        unsubscribe = welcome["List-Unsubscribe"].strip("<>")
        assert unsubscribe.startswith(f"{base}/unsubscribe/")
        page.goto(unsubscribe)
        page.click("button[type=submit]")
        assert "will get no more editions" in page.content()
        cookies = {c["name"]: c for c in page.context.cookies()}
        assert cookies["session"]["secure"] and cookies["session"]["httpOnly"]
    finally:
        browser.close()
    with world.db.engine.connect():
        assert world.db.lists.is_suppressed("weekly", "through.caddy@example.net")


def test_doctor_finds_this_instance_at_its_public_name(behind_caddy, monkeypatch):
    world, base, https, root = behind_caddy
    monkeypatch.setenv("SSL_CERT_FILE", str(root))
    with DnsServer(Zones({NAME: [("A", "127.0.0.1")]})) as dns_server:
        monkeypatch.setenv("DIGEST_NAMESERVER", dns_server.address)
        result = CliRunner().invoke(cli, ["--config", str(world.config_path), "doctor", "--json"])
        found = {c["check"]: c for c in json.loads(result.output)}
        assert found["public_url"]["ok"], found["public_url"]
        assert found["public_url"]["detail"] == f"{base} reaches this digest over https"
        monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET + "-another")        # another instance's secret
        result = CliRunner().invoke(cli, ["--config", str(world.config_path), "doctor", "--json"])
        other = {c["check"]: c for c in json.loads(result.output)}["public_url"]
        assert not other["ok"] and "not as this digest" in other["detail"]


def test_a_whole_setup_reaches_a_green_doctor(tmp_path, monkeypatch):
    """What docs/going-live.md leads to: SendGrid (its stand-in) with its DNS records
    published, the secrets set, `digest serve` behind Caddy at its public name, the
    scheduler running: every check passes."""
    from .support.sendgrid_server import SendGridStandIn
    from .test_doctor import DOMAIN, SENDGRID_RECORDS
    sendgrid = SendGridStandIn()
    for name, value in {"DIGEST_SECRET_KEY": SECRET, "DIGEST_EDITOR_PASSWORD": "a long editor password",
                        "SENDGRID_API_KEY": "SG.test-key", "SENDGRID_WEBHOOK_PUBLIC_KEY": "MFkwEwYHKoZIzj0C"}.items():
        monkeypatch.setenv(name, value)
    https = free_port()
    world = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 2, backend="sendgrid",
                  sendgrid={"host": sendgrid.host},
                  web={"base_url": f"https://{NAME}:{https}", "trusted_proxies": ["127.0.0.1"]})
    assert world.data["sending"]["from"].endswith(f"@{DOMAIN}>")
    zones = Zones({NAME: [("A", "127.0.0.1")], **SENDGRID_RECORDS})
    try:
        with caddy_in_front(world, tmp_path, https, ["schedule"]) as root, DnsServer(zones) as dns_server:
            monkeypatch.setenv("SSL_CERT_FILE", str(root))
            monkeypatch.setenv("DIGEST_NAMESERVER", dns_server.address)
            for _ in range(100):                                   # the scheduler's first heartbeat
                if world.db.locks.state("schedule"):
                    break
                time.sleep(0.1)
            result = CliRunner().invoke(cli, ["--config", str(world.config_path), "doctor"])
            assert result.exit_code == 0, result.output
            assert result.output.splitlines()[-1] == "14 of 14 checks pass."
            assert [line[0] for line in result.output.splitlines()[:-1]] == ["✓"] * 14
    finally:
        sendgrid.stop()
        world.close()
