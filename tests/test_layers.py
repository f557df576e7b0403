"""The shape of the code: the tree tells the pipeline (read -> pick -> write -> send,
then what comes back), SQL lives in digest/db only, and imports point one way:
fronts (cli, web, schedule) -> actions -> phases -> db and config -> the ground."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "digest"

# Lower layers never import higher ones; a module may import its own layer and below
# (but a phase never imports a sibling phase of its layer: see below).
LAYERS = [
    {"errors", "models", "resources", "crash", "oneline", "sanitize", "hosts"},     # the ground
    {"db", "config", "backends"},     # backends: the mail backends' declarations, by name
    {"read", "pick"},                 # sources -> database; database -> picks
    {"write"},                        # picks -> edition
    {"send"},                         # edition x list -> ledger -> mailers
    {"signals"},                      # what comes back: clicks, bounces, provider events
    {"live"},                         # going live: checks what every phase below depends on
    {"actions"},                      # what a person can do, for all three fronts
    {"schedule", "web", "cli", "__init__", "__main__"},                  # the fronts
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


Module = tuple[str, Path, ast.Module]


def modules(package: Path = PACKAGE) -> list[Module]:
    """Every module of the package as (dotted name, path, tree); pkg/__init__.py is `pkg.__init__`."""
    found = []
    for path in sorted(package.rglob("*.py")):
        dotted = ".".join(("digest", *path.relative_to(package).with_suffix("").parts))
        found.append((dotted, path, ast.parse(path.read_text(encoding="utf-8"))))
    return found


def top(dotted: str) -> str:
    """digest.db.ledger -> db; digest.web.public -> web; digest.cli -> cli."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def internal_imports(dotted: str, tree: ast.Module) -> set[str]:
    """What a module imports of digest, relative imports resolved against its package: for
    `pkg.mod` and for `pkg.__init__` (pkg/__init__.py) alike, that package is `pkg`."""
    package = dotted.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
                names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
            found.update(n for n in names if n.startswith("digest"))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("digest"))
    return found


def test_every_module_has_a_layer() -> None:
    unknown = {top(dotted) for dotted, _, _ in modules()} - set(RANK)
    assert not unknown, f"put these modules in a layer of LAYERS: {sorted(unknown)}"


def upward_imports(found: list[Module]) -> list[str]:
    upward = []
    for dotted, _, tree in found:
        for target in internal_imports(dotted, tree):
            if target == "digest" or top(target).startswith("__"):
                continue                         # the package itself: __version__
            if RANK[top(target)] > RANK[top(dotted)]:
                upward.append(f"{dotted} imports {target}")
    return upward


def test_imports_point_down_only() -> None:
    assert upward_imports(modules()) == []


def test_the_data_package_imports_only_models_and_errors() -> None:
    wrong = []
    for dotted, _, tree in modules():
        if top(dotted) != "db":
            continue
        for target in internal_imports(dotted, tree):
            if top(target) not in ("db", "models", "errors"):
                wrong.append(f"{dotted} imports {target}")
    assert wrong == []


def test_no_sql_outside_the_data_package() -> None:
    """Outside digest/db nothing imports SQLAlchemy or alembic, touches an engine's
    connections or executes a statement."""
    found = []
    for dotted, path, tree in modules():
        if top(dotted) == "db":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("sqlalchemy", "alembic"):
                found.append(f"{path.name}:{node.lineno} from {node.module} import ...")
            elif isinstance(node, ast.Import) and any(a.name.split(".")[0] in ("sqlalchemy", "alembic")
                                                      for a in node.names):
                found.append(f"{path.name}:{node.lineno} import sqlalchemy")
            elif isinstance(node, ast.Attribute) and node.attr in ("execute", "executemany", "begin", "connect",
                                                                   "create_all", "drop_all"):
                found.append(f"{path.name}:{node.lineno} .{node.attr}")
    assert found == []


PHASES = ("read", "pick", "write", "send", "signals", "live")
FRONTS = ("cli", "web", "schedule")
WHOLE_SETTINGS = {"config", "actions", "live", *FRONTS}      # live: init and doctor read or write the whole file
STORES = {"content", "picks", "drafts", "lists", "ledger", "locks", "runs", "events", "sessions", "welcomes",
          "checks", "orders", "signups", "subscribers", "bounces", "inbox",
          "mail_signups"}


def test_a_phase_never_imports_a_sibling_of_its_layer() -> None:
    """read and pick stand side by side and know nothing of each other."""
    found = []
    for dotted, _, tree in modules():
        for target in internal_imports(dotted, tree):
            mine, theirs = top(dotted), top(target)
            if mine in PHASES and theirs in PHASES and mine != theirs and RANK[mine] == RANK[theirs]:
                found.append(f"{dotted} imports {target}")
    assert found == []


def test_each_phase_says_what_goes_in_and_what_comes_out() -> None:
    for phase in PHASES:
        doc = ast.get_docstring(ast.parse((PACKAGE / phase / "__init__.py").read_text(encoding="utf-8"))) or ""
        assert "In:" in doc and "Out:" in doc, f"digest/{phase}/__init__.py: say what goes in and what comes out"


def test_at_most_a_dozen_modules_stand_in_the_package_itself() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(loose) <= 12, loose


def whole_settings(tree: ast.Module) -> list[int]:
    """Lines that import or name the whole `Settings`."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "Settings" for a in node.names):
            lines.append(node.lineno)
        elif isinstance(node, ast.Attribute) and node.attr == "Settings":
            lines.append(node.lineno)
    return lines


def test_only_the_fronts_and_actions_take_the_whole_settings() -> None:
    """A phase gets its own part (config.WriteSettings, config.SendSettings, a section such
    as config.Selection or config.Fetch, the list), never the whole configuration."""
    found = [f"{dotted}:{line}" for dotted, _, tree in modules() if top(dotted) not in WHOLE_SETTINGS
             for line in whole_settings(tree)]
    assert found == []


def store_calls(tree: ast.Module) -> list[str]:
    """`db.<store>`, `x.db.<store>` or `services().db.<store>`: reaching into the data package."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr in STORES):
            continue
        owner = node.value
        named_db = ((isinstance(owner, ast.Name) and owner.id == "db")
                    or (isinstance(owner, ast.Attribute) and owner.attr == "db"))
        if named_db:
            found.append(f"{node.lineno} .{node.attr}")
    return found


def fronts_past_actions(found: list[Module]) -> list[str]:
    """Where a front imports a phase or calls a store."""
    wrong = []
    for dotted, _, tree in found:
        if top(dotted) not in FRONTS:
            continue
        wrong += [f"{dotted} imports {t}" for t in internal_imports(dotted, tree) if top(t) in PHASES]
        wrong += [f"{dotted}:{call}" for call in store_calls(tree)]
    return wrong


def test_the_fronts_go_through_actions_only() -> None:
    """The CLI, the web app and the scheduler import no phase and call no store: each
    command and view calls actions (ground objects, config and errors they may use)."""
    assert fronts_past_actions(modules()) == []


def test_the_checks_above_can_fail() -> None:
    """The scanner sees a real upward import, a real SQL call, the whole Settings and a
    front reaching into a store (no vacuous pass)."""
    tree = ast.parse("from ..cli import main\nfrom sqlalchemy import insert\nengine.begin()\n"
                     "from ..config import Settings\napp.db.ledger.history()\nservices().db.lists.active()\n"
                     "settings.lists\n")
    assert internal_imports("digest.db.content", tree) == {"digest.cli", "digest.config"}
    attributes = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert "begin" in attributes
    assert whole_settings(tree) == [4]
    assert store_calls(tree) == ["5 .ledger", "6 .lists"]          # settings.lists is not a store


def test_relative_imports_in_a_package_init_are_read_from_that_package(tmp_path: Path) -> None:
    """In pkg/__init__.py, `from .x import y` is pkg.x and `from ..x import y` a sibling of
    pkg: a front's __init__ that reaches into a phase, or a lower __init__ that imports a
    front, is caught like any module."""
    files = {"__init__.py": "", "signals/__init__.py": "", "signals/clicks.py": "class ClickRule: ...\n",
             "web/__init__.py": "from ..signals.clicks import ClickRule\nfrom . import views\n",
             "web/views.py": "from .. import actions\n", "actions/__init__.py": "",
             "db/__init__.py": "from ..web import views\nfrom .store import Store\n", "db/store.py": ""}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    found = modules(tmp_path)
    web_init = ast.parse(files["web/__init__.py"])
    assert internal_imports("digest.web.__init__", web_init) == {"digest.signals.clicks", "digest.web.views"}
    assert fronts_past_actions(found) == ["digest.web.__init__ imports digest.signals.clicks"]
    assert upward_imports(found) == ["digest.db.__init__ imports digest.web"]
