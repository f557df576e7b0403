"""Learn from the editor: how well the selection weights agree with the pins and excludes
of a list's past editions, and weights that agree better.

Each past edition is selected again from the stored comments of its period, without
the editor's picks: a pinned comment agrees when the weights alone would show it, an
excluded one when they would not. The search changes one weight at a time (coordinate
search over a few multiples), keeps a change only when agreement strictly improves, and
stops after a few rounds; ties keep the weights as they are.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path

from ..config import Selection as Knobs
from ..db import Database
from ..db.history import EditorHistory, PastEdition
from ..errors import PickError
from ..models import Discussion, Picks
from .select import Selection, select

log = logging.getLogger(__name__)

WEIGHTS = ("words_weight", "reply_weight", "reply_words_weight", "replier_weight",
           "response_weight", "responder_weight", "quoted_weight")
CANDIDATES = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
ROUNDS = 3
FEW_PICKS = 10             # below this, say that the fit is to too little


class TuneError(PickError):
    """Nothing to learn from, or a config file that cannot take the new weights."""


@dataclass(frozen=True)
class Agreement:
    pinned_shown: int = 0
    pinned: int = 0
    excluded_hidden: int = 0
    excluded: int = 0

    @property
    def share(self) -> float:
        return (self.pinned_shown + self.excluded_hidden) / max(1, self.pinned + self.excluded)

    def __add__(self, other: Agreement) -> Agreement:
        return Agreement(self.pinned_shown + other.pinned_shown, self.pinned + other.pinned,
                         self.excluded_hidden + other.excluded_hidden, self.excluded + other.excluded)


@dataclass(frozen=True)
class Tuning:
    editions: int
    before: Agreement
    after: Agreement
    weights_before: dict[str, float]
    weights_after: dict[str, float]

    def changes(self) -> dict[str, tuple[float, float]]:
        return {k: (self.weights_before[k], v) for k, v in self.weights_after.items() if v != self.weights_before[k]}


Case = tuple[PastEdition, list[Discussion]]


def tune(db: Database, list_name: str, knobs: Knobs, zone: tzinfo) -> Tuning:
    """Agreement of the current weights with the list's past picks, and better weights."""
    cases = _cases(db, list_name)
    before = agreement(cases, knobs, zone)
    best, best_score = knobs, before
    for _ in range(ROUNDS):
        improved = False
        for name in WEIGHTS:
            best, best_score, changed = _improve(cases, best, best_score, name, zone)
            improved |= changed
        if not improved:
            break
    return Tuning(len(cases), before, best_score, _weights(knobs), _weights(best))


def _cases(db: Database, list_name: str) -> list[Case]:
    past = [e for e in EditorHistory(db.engine).editions(list_name) if e.pinned or e.excluded]
    if not past:
        raise TuneError(f"no edition of {list_name} was sent with pins or excludes yet: there is nothing to learn "
                        "from; pin or exclude comments (`digest pin`, `digest exclude` or the web editor), send, "
                        "then tune")
    return [(edition, db.content.discussions(edition.since, edition.until)) for edition in past]


def agreement(cases: Iterable[Case], knobs: Knobs, zone: tzinfo) -> Agreement:
    total = Agreement()
    for edition, discussions in cases:
        shown = shown_keys(select(discussions, edition.since, edition.until, knobs, Picks(), zone))
        total += Agreement(len(edition.pinned & shown), len(edition.pinned),
                           len(edition.excluded - shown), len(edition.excluded))
    return total


def shown_keys(selection: Selection) -> set[str]:
    """Every comment an edition shows: tops and replies of its threads, the star's too."""
    return {said.comment.key for _, thread in selection.threads() for said in (thread.top, *thread.replies)}


def _improve(cases: list[Case], knobs: Knobs, score: Agreement, name: str,
             zone: tzinfo) -> tuple[Knobs, Agreement, bool]:
    current = getattr(knobs, name)
    best, best_score = knobs, score
    for value in sorted({*CANDIDATES, current * 0.5, current * 2}):
        if value == current:
            continue
        trial = knobs.model_copy(update={name: value})
        found = agreement(cases, trial, zone)
        if found.share > best_score.share:
            best, best_score = trial, found
    return best, best_score, best is not knobs


def _weights(knobs: Knobs) -> dict[str, float]:
    return {name: float(getattr(knobs, name)) for name in WEIGHTS}


# ------------------------------------------------------------------ writing the weights

_HEADER = re.compile(r"^\s*\[\s*selection\s*\]\s*(#.*)?$")
_ANY_HEADER = re.compile(r"^\s*\[")


def write_weights(path: Path, changes: dict[str, float]) -> None:
    """Set the given [selection] keys in the config file, keeping every other line and
    comment as it is (a comment after a value too). The new text must parse as TOML and
    hold exactly the new weights, else nothing is written (an inline table, dotted keys or
    a [selection] inside a string are left to the editor). Written to a temporary file with
    the file's mode and moved into place (through a symlink, onto the file it points at)."""
    target = path.resolve()
    text = target.read_text(encoding="utf-8")
    updated = _with_weights(text.splitlines(), changes)
    _check(updated, changes, path)
    temporary = target.with_name(target.name + ".tune-tmp")
    temporary.write_text(updated, encoding="utf-8")
    shutil.copymode(target, temporary)
    os.replace(temporary, target)


def _with_weights(lines: list[str], changes: dict[str, float]) -> str:
    start = next((i for i, line in enumerate(lines) if _HEADER.match(line)), None)
    if start is None:
        lines += ["", "[selection]"]
        start = len(lines) - 1
    end = next((i for i in range(start + 1, len(lines)) if _ANY_HEADER.match(lines[i])), len(lines))
    for name, value in changes.items():
        written = f"{name} = {value!r}"
        found = next((i for i in range(start + 1, end) if re.match(rf"^\s*{name}\s*=", lines[i])), None)
        if found is None:
            lines.insert(start + 1, written)
            end += 1
        else:
            comment = re.search(r"\s+#[^\"']*$", lines[found])
            lines[found] = written + (comment.group(0) if comment else "")
    return "\n".join(lines) + "\n"


def _check(text: str, changes: dict[str, float], path: Path) -> None:
    try:
        table = tomllib.loads(text).get("selection", {})
        Knobs(**table)
    except (tomllib.TOMLDecodeError, ValueError, TypeError) as error:
        raise TuneError(f"{path}: the weights cannot be written into its [selection] without breaking it "
                        f"({str(error).splitlines()[0]}); nothing was written: set them by hand") from None
    if not isinstance(table, dict) or any(table.get(name) != value for name, value in changes.items()):
        raise TuneError(f"{path}: its [selection] is not a plain table digest can edit (an inline table, dotted "
                        "keys or quoted keys); nothing was written: set the weights by hand")
