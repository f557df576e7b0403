"""A complete setting for delivery tests: the sample blog stored, a list file, a config."""

from __future__ import annotations

import os
import shutil
import tomllib
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa

from digest import backends, config
from digest.actions import send_edition
from digest.db import Database
from digest.read.ingest import ingest
from digest.write.edition import period

from .templates import REUSE, TEMPLATES

ROOT = Path(__file__).resolve().parent.parent.parent
WEEK = (date(2017, 10, 25), date(2017, 11, 1))
TEST_SECRET_ENV = "DIGEST_TEST_REAL_SECRET"       # worlds with a real backend sign with this (subprocesses inherit it)
os.environ.setdefault(TEST_SECRET_ENV, "a-test-signing-secret-of-real-length-0123456789")


class World:
    def __init__(self, tmp_path: Path, db_url: str, subscribers: int = 3, web: dict | None = None,
                 **sending: dict) -> None:
        self.folder = tmp_path / "examples"
        sample = not self.folder.exists()          # the examples as shipped: their stored sample is copied
        if sample:
            shutil.copytree(ROOT / "examples", self.folder)
        data = tomllib.loads((self.folder / "config.toml").read_text(encoding="utf-8"))
        data["database"] = {"url": db_url}
        data["sending"].update({"retry_delay_seconds": 0.05, "retry_within_run_seconds": 1.0})   # fast deferrals
        for key, value in sending.items():
            if isinstance(value, dict):
                data["sending"].setdefault(key, {}).update(value)
            else:
                data["sending"][key] = value
        if backends.sends_to_people(data["sending"]["backend"]):   # ready for real mail (digest.send.readiness)
            data["sending"]["from"] = "On Probation digest <digest@onprobation-digest.org>"
            data["web"].update({"base_url": "https://digest.onprobation-digest.org", "insecure_dev_mode": False,
                                "secret_key_env": TEST_SECRET_ENV})
        data["web"].update(web or {})
        self.data = data
        self.write_list([f"reader{n:05d}@example.org" for n in range(subscribers)])
        self.save()
        self.settings = config.from_dict(data, root=self.folder)
        if sample:
            copy_sample(self.settings.database_url())
        self.db: Database = Database.open(self.settings.database_url())
        self.weekly = self.settings.mailing_list("weekly")
        if not sample:
            store_sample(self.settings, self.db, self.folder)
        self.since, self.until = period(self.settings.lists[0], datetime.now(UTC), *WEEK)

    @property
    def write(self) -> config.WriteSettings:
        """What the write phase sees of these settings."""
        return self.settings.write_settings()

    @property
    def config_path(self) -> Path:
        return self.folder / "config.toml"

    def reload(self) -> None:
        """Write self.data to the config file and read the settings again."""
        self.save()
        self.settings = config.from_dict(self.data, root=self.folder)
        self.weekly = self.settings.mailing_list("weekly")

    def save(self) -> None:
        lines = []
        for section, values in self.data.items():
            lines.append(_toml(section, values))
        self.config_path.write_text("\n".join(lines), encoding="utf-8")

    def write_list(self, addresses: list[str], extra: str = "") -> None:
        rows = "".join(f"{a},Reader {a.split('@')[0][6:]}\n" for a in addresses)
        (self.folder / "subscribers" / "weekly.csv").write_text("email,name\n" + rows + extra, encoding="utf-8")

    def close(self) -> None:
        self.db.close()


def sent(world: World) -> World:
    """The world with the sample week's edition sent to its list (the outbox has it)."""
    send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    return world


def store_sample(settings: config.Settings, db: Database, folder: Path) -> None:
    """Read the sample blog in folder into db, as `digest fetch` would on 1 November 2017."""
    report = ingest(settings.sources[0], settings.fetch, db, folder, datetime(2017, 11, 1, 9, tzinfo=UTC))
    assert report.error is None


def copy_sample(url: str) -> None:
    """Make the database at url a copy of the sample stored once per test run."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        TEMPLATES.copy_sqlite("sampled", _sampled, Path(parsed.database or ""))
    else:
        REUSE.fill(url, _sampled)


def _sampled(url: str) -> None:
    folder = TEMPLATES.folder / "examples"
    if not folder.exists():
        shutil.copytree(ROOT / "examples", folder)
    data = tomllib.loads((folder / "config.toml").read_text(encoding="utf-8"))
    settings = config.from_dict({**data, "database": {"url": url}}, root=folder)
    with Database.open(url) as db:
        store_sample(settings, db, folder)


def _toml(section: str, values: object) -> str:
    if isinstance(values, list):
        return "\n".join(f"[[{section}]]\n" + _pairs(item) for item in values)
    simple = {k: v for k, v in values.items() if not isinstance(v, dict)}
    nested = "".join(_toml(f"{section}.{k}", v) for k, v in values.items() if isinstance(v, dict))
    return f"[{section}]\n" + _pairs(simple) + nested


def _pairs(values: dict) -> str:
    def literal(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return str(v)
    return "".join(f"{k} = {literal(v)}\n" for k, v in values.items())
