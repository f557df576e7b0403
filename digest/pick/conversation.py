"""Who answers whom in a post's comments. Pure: comments in, links out.

Blogger threads are one level deep, but the replies talk to each other. A comment is
taken to answer an earlier one of the same post on evidence in its own text:
- it quotes eight or more words of it (a run the post itself does not contain);
- it addresses its author by name ("@Getafix", "Getafix said", "Netnipper," first);
  a name is the author's, or the signature its comment closes with ("'Getafix");
- it names its time ("Anon at 09.01", "the 10:47 comment", "@ 8:33"), matched to
  the minute (or one either side) in the list's time zone;
- it speaks to "the last poster" / "last two posters" / "the comment above";
- it takes up two or more distinctive words (five letters or more, not in the post)
  that only one earlier comment had used (an "echo", the weakest evidence).
Each link keeps its evidence and a confidence. Nesting a feed gives (WordPress) is
taken as given, with full confidence. Nothing here decides what is shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from ..models import Comment
from .words import SHINGLE, words

ANONYMOUS = frozenset({"anonymous", "anon", "unknown", ""})
QUOTE, NAME, TIME, PREVIOUS, NESTED, ECHO = "quote", "name", "time", "previous", "nested", "echo"
CONFIDENCE = {NESTED: 1.0, QUOTE: 0.9, NAME: 0.8, TIME: 0.7, PREVIOUS: 0.5, ECHO: 0.5}
ECHO_WORDS, ECHO_LENGTH = 2, 5

_TIME = re.compile(
    r"(?:\b(?:anon\w*|annon\w*|anonymous|at|the|your|poster)\s*@?\s*|@\s*)"
    r"([01]?\d|2[0-3])[:.]([0-5]\d)\b(?!\s*(?:am|pm)\b[^.]{0,15}\b(?:meeting|appointment))"
    r"|\b([01]?\d|2[0-3])[:.]([0-5]\d)\s*(?:comment|post|poster|contributor)\b",
    re.IGNORECASE)
_PREVIOUS = re.compile(r"\b(?:last|previous)\s+(two|2|three|3)?\s*(?:poster|comment|contributor|commenter)s?\b"
                       r"|\b(?:poster|comment|commenter)\s+above\b", re.IGNORECASE)
_SIGNATURE = re.compile(r"^\s*['’‘\-–—~]+\s*([A-Za-z][\w.]*(?:\s+[A-Za-z][\w.]*){0,2})\s*$")
_COUNT = {"two": 2, "2": 2, "three": 3, "3": 3}
ORDINARY_WORDS = frozenset("""
well yes yeah no nope so ok okay thanks thank cheers agreed agree indeed sorry hi hello hey dear true right sure
exactly quite great good nice wow oh ah hmm lol absolutely really actually also and but or then now here there what
why how who when where this that it its we you they he she him her them me my our your their all any some one none
just still even only very much more most less least first last next new old same other another such these those
well-said amen bravo spot interesting fair point noted again anyway however indeed sadly frankly honestly clearly
probation officer officers staff manager managers union member members reader readers anon someone somebody nobody
everyone everybody guest visitor admin editor author poster commenter unknown
""".split())


@dataclass(frozen=True)
class Link:
    """`source` answers `target` (comment keys), on `evidence`."""

    source: str
    target: str
    kind: str
    evidence: str
    confidence: float


def infer(comments: Iterable[Comment], post_text: str = "", zone: tzinfo = UTC) -> list[Link]:
    """The links among one post's comments (any order given; read oldest first)."""
    ordered = sorted(comments, key=lambda c: (c.published, c.key))
    said = _Said(post_text)
    found: list[Link] = []
    for index, comment in enumerate(ordered):
        if not comment.removed:
            found.extend(_best_per_target(_links(comment, ordered[:index], said, zone)))
        said.add(comment)
    return found


def answered(links: Iterable[Link], minimum: float = 0.5) -> dict[str, list[Link]]:
    """For each comment, the comments it answers with the most sure evidence it has
    (several when that evidence names several: "the last two posters")."""
    best: dict[str, list[Link]] = {}
    for link in links:
        if link.confidence < minimum:
            continue
        known = best.get(link.source)
        if known is None or link.confidence > known[0].confidence:
            best[link.source] = [link]
        elif link.confidence == known[0].confidence:
            known.append(link)
    return best


def _links(comment: Comment, earlier: list[Comment], said: _Said, zone: tzinfo) -> list[Link]:
    if not earlier:
        return []
    found = _nested(comment, earlier) + said.quoted(comment)
    found += _named(comment, said.names) + _timed(comment, earlier, zone) + _previous(comment, earlier)
    found += said.echoed(comment)
    return [link for link in found if link.target != comment.key]


def _best_per_target(links: list[Link]) -> list[Link]:
    best: dict[str, Link] = {}
    for link in links:
        if link.target not in best or link.confidence > best[link.target].confidence:
            best[link.target] = link
    return list(best.values())


def _link(comment: Comment, target: Comment, kind: str, evidence: str) -> Link:
    return Link(comment.key, target.key, kind, evidence[:120], CONFIDENCE[kind])


# ------------------------------------------------------------------ the kinds of evidence

def _nested(comment: Comment, earlier: list[Comment]) -> list[Link]:
    """A parent the feed declared below the thread's top comment (WordPress)."""
    target = next((c for c in earlier if comment.answers and c.key == comment.answers), None)
    return [_link(comment, target, NESTED, "the feed says so")] if target else []


class _Said:
    """Runs of eight words and which comment said them first (the post's own are not quotes)."""

    def __init__(self, post_text: str) -> None:
        tokens = words(post_text)
        self.first: dict[tuple[str, ...], Comment | None] = dict.fromkeys(_runs(tokens))
        self.post_words = set(tokens)
        self.users: dict[str, list[Comment]] = {}
        self.names: dict[str, Comment] = {}

    def quoted(self, comment: Comment) -> list[Link]:
        tokens = words(comment.text)
        found: dict[str, Link] = {}
        for i in range(len(tokens) - SHINGLE + 1):
            source = self.first.get(tuple(tokens[i:i + SHINGLE]))
            if source is not None and source.key not in found and person(source) != person(comment):
                found[source.key] = _link(comment, source, QUOTE, "quotes “" + " ".join(tokens[i:i + SHINGLE]) + "”")
        return list(found.values())

    def echoed(self, comment: Comment) -> list[Link]:
        """Distinctive words only one earlier comment used, taken up again."""
        shared: dict[str, list[str]] = {}
        for word in set(words(comment.text)) - self.post_words:
            users = self.users.get(word, [])
            if len(word) >= ECHO_LENGTH and len(users) == 1 and person(users[0]) != person(comment):
                shared.setdefault(users[0].key, []).append(word)
        return [Link(comment.key, key, ECHO, "takes up " + ", ".join(sorted(found)[:4]), CONFIDENCE[ECHO])
                for key, found in shared.items() if len(found) >= ECHO_WORDS]

    def add(self, comment: Comment) -> None:
        for key in _name_keys(comment):                # each name -> the latest comment going by it
            self.names[key] = comment
        tokens = words(comment.text)
        for run in _runs(tokens):
            self.first.setdefault(run, comment)
        for word in set(tokens):
            self.users.setdefault(word, []).append(comment)


def _runs(tokens: list[str]) -> Iterable[tuple[str, ...]]:
    return (tuple(tokens[i:i + SHINGLE]) for i in range(len(tokens) - SHINGLE + 1))


def _named(comment: Comment, names: dict[str, Comment]) -> list[Link]:
    """Names this comment addresses: "@Name" anywhere; "Name said/says/wrote" or "Name,"
    first only for names that are not ordinary words ("Well, ..." addresses nobody).
    Linear: candidates are read off the text once and looked up, a few words at a time."""
    found: dict[str, Link] = {}
    for candidate, strong in _candidates(comment.text):
        for key in _prefixes(candidate):
            target = names.get(key)
            if target is not None and (strong or not _ordinary(key)) and target.key not in found:
                found[target.key] = _link(comment, target, NAME, f"names {key}")
    return list(found.values())


_AT = re.compile(r"@\s*([^\W\d][\w.'’-]*(?:[ \t]+[\w.'’-]+){0,3})")
_SAID = re.compile(r"(?<![\w.'’-])((?:[\w.'’-]+[ \t]+){0,3}[\w.'’-]+)[ \t]+(?:said|says|wrote|writes)\b",
                   re.IGNORECASE)                     # starts only where a word starts: linear on a 100 kB "word"
_OPENING = re.compile(r"\A\W*((?:[\w.'’-]+[ \t]+){0,3}?[\w.'’-]+)[ \t]*[,:\-–—]")
MAX_NAME_WORDS = 4


def _candidates(text: str) -> list[tuple[str, bool]]:
    """(words that may start with a name, whether the evidence is @) found in text."""
    found = [(m.group(1), True) for m in _AT.finditer(text)]
    found += [(" ".join(m.group(1).split()[::-1]), False) for m in _SAID.finditer(text)]   # read backwards
    opening = _OPENING.match(text)
    return found + ([(opening.group(1), False)] if opening else [])


def _prefixes(candidate: str) -> list[str]:
    """The candidate's first one to four words, lower-cased (a reversed "X said" run gives
    its last words first: both orders are tried)."""
    words_ = candidate.lower().split()[:MAX_NAME_WORDS]
    forward = [" ".join(words_[:n]) for n in range(1, len(words_) + 1)]
    backward = [" ".join(words_[:n][::-1]) for n in range(1, len(words_) + 1)]
    return list(dict.fromkeys(forward + backward))


def _name_keys(comment: Comment) -> list[str]:
    """The names a comment goes by (author, else closing signature), lower-cased."""
    keys = (" ".join((name or "").lower().split()) for name in (comment.author, _signature(comment.text)))
    return [key for key in keys if key and key not in ANONYMOUS and len(key) >= 3]


def _ordinary(name: str) -> bool:
    """A name that is also an everyday word: only "@name" addresses it."""
    return name in ORDINARY_WORDS


def _signature(text: str) -> str | None:
    last = text.strip().rsplit("\n", 1)[-1]
    match = _SIGNATURE.match(last) if len(text.split()) > len(last.split()) else None
    return match.group(1) if match else None


def _timed(comment: Comment, earlier: list[Comment], zone: tzinfo) -> list[Link]:
    found = []
    for match in _TIME.finditer(comment.text):
        hour, minute = (int(match.group(1) or match.group(3)), int(match.group(2) or match.group(4)))
        target = _at(earlier, hour, minute, zone)
        if target is not None:
            found.append(_link(comment, target, TIME, f"names the time {match.group(0).strip()}"))
    return found


def _at(earlier: list[Comment], hour: int, minute: int, zone: tzinfo) -> Comment | None:
    """The latest earlier comment written at that minute, else one minute either side."""
    for slack in (0, 1):
        for comment in reversed(earlier):
            local = comment.published.astimezone(zone)
            for candidate in {hour, hour + 12} if hour < 12 else {hour}:
                if abs(_minutes(local) - (candidate * 60 + minute)) <= slack:
                    return comment
    return None


def _minutes(moment: datetime) -> int:
    return moment.hour * 60 + moment.minute


def _previous(comment: Comment, earlier: list[Comment]) -> list[Link]:
    match = _PREVIOUS.search(comment.text)
    if not match:
        return []
    count = _COUNT.get((match.group(1) or "").lower(), 1)
    return [_link(comment, target, PREVIOUS, match.group(0)) for target in earlier[-count:]]


def within(links: list[Link], keys: set[str]) -> list[Link]:
    """The links between the given comments only."""
    return [link for link in links if link.source in keys and link.target in keys]



def person(comment: Comment) -> str:
    """Who wrote it, as far as can be told: anonymous comments are each their own person."""
    name = comment.author.strip().lower()
    return "#" + comment.key if name in ANONYMOUS else name
