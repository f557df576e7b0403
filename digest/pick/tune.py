"""Learn from the editor and from subscribers: how well the selection weights agree with the
pins and excludes of a list's past editions and with the threads subscribers opened, and
weights that agree better.

Each past edition is selected again from the stored comments of its period, without
the editor's picks: a pinned comment agrees when the weights alone would show it, an
excluded one when they would not. Subscribers' clicks are corrected for position first (the
first thread of an edition is opened more for being first): a thread's clicks divided by
what its place draws on average. Where subscribers clearly preferred one thread of an
edition to another (PREFERRED times the corrected clicks, at least MIN_CLICKS, in an
edition whose threads drew MIN_EDITION_CLICKS), the
weights agree when they score it higher. The search changes one weight at a time
(coordinate search over a few multiples), keeps a change only when agreement strictly
improves, and stops after a few rounds; ties keep the weights as they are.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path

from ..config import Selection as Knobs
from ..db import Database
from ..db.history import ClickedEdition, EditorHistory, PastEdition
from ..errors import PickError
from ..models import Discussion, Picks
from .select import Selection, select, thread_scores

log = logging.getLogger(__name__)

WEIGHTS = ("words_weight", "reply_weight", "reply_words_weight", "replier_weight",
           "response_weight", "responder_weight", "quoted_weight")
CANDIDATES = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
ROUNDS = 3
FEW_PICKS = 10             # below this, say that the fit is to too little
PREFERRED = 1.5            # one thread preferred to another: this many times its position-corrected clicks...
MIN_CLICKS = 3             # ...and at least this many clicks of its own...
MIN_EDITION_CLICKS = 10    # ...in an edition whose threads drew at least this many (two clicks say nothing)
MIN_AT_POSITION = 2        # editions with a thread at a place before its average is believed (else 1/place)


class TuneError(PickError):
    """Nothing to learn from, or a config file that cannot take the new weights."""


@dataclass(frozen=True)
class Agreement:
    pinned_shown: int = 0
    pinned: int = 0
    excluded_hidden: int = 0
    excluded: int = 0
    preferred_higher: int = 0       # subscribers' clear preferences the weights score the same way
    preferred: int = 0

    @property
    def share(self) -> float:
        return ((self.pinned_shown + self.excluded_hidden + self.preferred_higher)
                / max(1, self.pinned + self.excluded + self.preferred))

    def __add__(self, other: Agreement) -> Agreement:
        return Agreement(self.pinned_shown + other.pinned_shown, self.pinned + other.pinned,
                         self.excluded_hidden + other.excluded_hidden, self.excluded + other.excluded,
                         self.preferred_higher + other.preferred_higher, self.preferred + other.preferred)


@dataclass(frozen=True)
class Tuning:
    editions: int
    before: Agreement
    after: Agreement
    weights_before: dict[str, float]
    weights_after: dict[str, float]
    clicked_editions: int = 0
    clicks: int = 0
    position_bias: dict[int, float] = field(default_factory=dict)   # place -> its clicks relative to the first

    def changes(self) -> dict[str, tuple[float, float]]:
        return {k: (self.weights_before[k], v) for k, v in self.weights_after.items() if v != self.weights_before[k]}


Case = tuple[PastEdition, list[Discussion]]
Preference = tuple[str, str]                 # (the thread subscribers preferred, the one they opened less)


@dataclass(frozen=True)
class ClickCase:
    edition: ClickedEdition
    discussions: list[Discussion]
    preferred: list[Preference]


def tune(db: Database, list_name: str, knobs: Knobs, zone: tzinfo) -> Tuning:
    """Agreement of the current weights with the list's past picks and subscribers' clicks,
    and better weights."""
    history = EditorHistory(db.engine)
    cases = _cases(db, history, list_name)
    clicked = history.clicked(list_name)
    bias = position_bias(clicked)
    click_cases = [ClickCase(e, db.content.discussions(e.since, e.until), preferences(e, bias)) for e in clicked]
    click_cases = [case for case in click_cases if case.preferred]
    if not cases and not click_cases:
        raise TuneError(f"no edition of {list_name} was sent with pins or excludes, nor read with clicks, yet: "
                        "there is nothing to learn from; pin or exclude comments (`digest pin`, `digest exclude` "
                        "or the web editor) or let readers' clicks come in ([tracking] clicks), then tune")
    before = agreement(cases, knobs, zone, click_cases)
    best, best_score = search(cases, knobs, zone, click_cases)
    clicks = sum(n for e in clicked for _, n in e.threads.values())
    return Tuning(len(cases), before, best_score, _weights(knobs), _weights(best), len(click_cases), clicks, bias)


def search(cases: list[Case], knobs: Knobs, zone: tzinfo,
           click_cases: list[ClickCase] | None = None) -> tuple[Knobs, Agreement]:
    """The weights that agree best with the cases (coordinate search from knobs), and how
    well they agree. bench/editorial.py --loo uses it to tune on some posts and measure
    on another."""
    clicked = click_cases or []
    best, best_score = knobs, agreement(cases, knobs, zone, clicked)
    for _ in range(ROUNDS):
        improved = False
        for name in WEIGHTS:
            best, best_score, changed = _improve(cases, clicked, best, best_score, name, zone)
            improved |= changed
        if not improved:
            break
    return best, best_score


def _cases(db: Database, history: EditorHistory, list_name: str) -> list[Case]:
    past = [e for e in history.editions(list_name) if e.pinned or e.excluded]
    return [(edition, db.content.discussions(edition.since, edition.until)) for edition in past]


def position_bias(clicked: list[ClickedEdition]) -> dict[int, float]:
    """Place -> the clicks a thread at that place draws, relative to the first place,
    averaged over the editions; a place seen in fewer than MIN_AT_POSITION editions
    (or with no clicks at the first) is given 1/place."""
    seen: dict[int, list[int]] = {}
    for edition in clicked:
        for position, clicks in edition.threads.values():
            seen.setdefault(position, []).append(clicks)
    first = sum(seen.get(1, [])) / max(1, len(seen.get(1, [])))
    bias = {}
    for position, counts in sorted(seen.items()):
        believed = len(counts) >= MIN_AT_POSITION and first > 0
        bias[position] = round(max(0.05, sum(counts) / len(counts) / first) if believed else 1 / max(1, position), 3)
    return bias


def preferences(edition: ClickedEdition, bias: dict[int, float]) -> list[Preference]:
    """The pairs of the edition's threads where subscribers clearly preferred the first,
    clicks corrected for the place each was shown at."""
    if sum(clicks for _, clicks in edition.threads.values()) < MIN_EDITION_CLICKS:
        return []
    corrected = {key: (clicks / bias.get(position, 1.0), clicks) for key, (position, clicks) in edition.threads.items()}
    return [(a, b) for a, (ca, na) in corrected.items() for b, (cb, _) in corrected.items()
            if a != b and na >= MIN_CLICKS and ca >= PREFERRED * cb]


def agreement(cases: Iterable[Case], knobs: Knobs, zone: tzinfo, click_cases: Iterable[ClickCase] = ()) -> Agreement:
    total = Agreement()
    for edition, discussions in cases:
        shown = shown_keys(select(discussions, edition.since, edition.until, knobs, Picks(), zone))
        total += Agreement(len(edition.pinned & shown), len(edition.pinned),
                           len(edition.excluded - shown), len(edition.excluded))
    for case in click_cases:
        scores = thread_scores(case.discussions, case.edition.since, case.edition.until, knobs, zone)
        higher = sum(1 for a, b in case.preferred if scores.get(a, 0.0) > scores.get(b, 0.0))
        total += Agreement(preferred_higher=higher, preferred=len(case.preferred))
    return total


def shown_keys(selection: Selection) -> set[str]:
    """Every comment an edition shows: tops and replies of its threads, the star's too."""
    return {said.comment.key for _, thread in selection.threads() for said in (thread.top, *thread.replies)}


def _improve(cases: list[Case], click_cases: list[ClickCase], knobs: Knobs, score: Agreement, name: str,
             zone: tzinfo) -> tuple[Knobs, Agreement, bool]:
    current = getattr(knobs, name)
    best, best_score = knobs, score
    for value in sorted({*CANDIDATES, current * 0.5, current * 2}):
        if value == current:
            continue
        trial = knobs.model_copy(update={name: value})
        found = agreement(cases, trial, zone, click_cases)
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
