"""`digest tune`: past editions replayed against the editor's pins and excludes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest import config
from digest.cli import cli
from digest.pick.tune import write_weights

ROOT = Path(__file__).resolve().parent.parent
WEEK = ["--since", "2017-10-25", "--until", "2017-11-01"]
STAR = "2074382365275527439"        # the editor's real star of that week, a reply digest does not show by itself
SHOWN = "3655535858664589543"       # a long reply digest shows, which the editor leaves out


def run(config_path: str, *args: str):
    return CliRunner().invoke(cli, ["--config", config_path, *args])


def test_tune_without_past_picks_says_there_is_nothing_to_learn(demo):
    result = run(demo, "tune", "weekly")
    assert result.exit_code == 1
    assert result.output.startswith("Error: no edition of weekly was sent with pins or excludes, nor read with "
                                    "clicks, yet")
    assert len(result.output.strip().splitlines()) == 1


def test_tune_replays_the_sent_edition_with_its_picks_and_writes_only_when_asked(demo):
    assert run(demo, "exclude", "weekly", SHOWN).exit_code == 0
    pinned = run(demo, "pin", "weekly", STAR, *WEEK)
    assert pinned.exit_code == 0, pinned.output
    sent = run(demo, "send", "weekly", *WEEK, "--yes")
    assert sent.exit_code == 0, sent.output
    before = Path(demo).read_text(encoding="utf-8")

    result = run(demo, "tune", "weekly")
    assert result.exit_code == 0, result.output
    assert "weekly: 1 past edition with picks, 0 with readers' clicks (0 clicks)" in result.output
    now = re.search(r"now\s+pinned shown (\d)/1, excluded kept out (\d)/1, readers' clear preferences scored "
                    r"alike 0/0: (\d+)% agreement", result.output)
    tuned = re.search(r"tuned\s+pinned shown (\d)/1, excluded kept out (\d)/1, readers' clear preferences scored "
                      r"alike 0/0: (\d+)% agreement", result.output)
    assert now and tuned and now.group(1, 2) == ("0", "0") and int(tuned.group(3)) >= int(now.group(3))
    assert Path(demo).read_text(encoding="utf-8") == before              # nothing written without --write

    if int(tuned.group(3)) > int(now.group(3)):
        written = run(demo, "tune", "weekly", "--write")
        assert written.exit_code == 0 and "Written to" in written.output
        again = run(demo, "tune", "weekly")
        assert f"now    pinned shown {tuned.group(1)}/1" in again.output    # the new weights are the config's
        assert config.load(Path(demo)).selection != config.from_dict({}).selection


def test_written_weights_keep_every_other_line(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('# mine\n[site]\ntitle = "T"\n\n[selection]\n# a comment\nwords_weight = 1.0\n'
                    'min_words = 15\n\n[fetch]\ntimeout = 5\n', encoding="utf-8")
    write_weights(path, {"words_weight": 0.5, "quoted_weight": 2.0})
    assert path.read_text(encoding="utf-8") == ('# mine\n[site]\ntitle = "T"\n\n[selection]\nquoted_weight = 2.0\n'
                                                '# a comment\nwords_weight = 0.5\nmin_words = 15\n\n[fetch]\n'
                                                'timeout = 5\n')
    bare = tmp_path / "bare.toml"
    bare.write_text('[site]\ntitle = "T"\n', encoding="utf-8")
    write_weights(bare, {"reply_weight": 4.0})
    assert bare.read_text(encoding="utf-8").endswith("\n[selection]\nreply_weight = 4.0\n")


LAYOUTS = {                                     # valid TOML a line editor would break (a stranger's attack)
    "inline table": 'selection = { words_weight = 1.0, reply_weight = 1.0 }\n[site]\ntitle = "X"\n',
    "dotted keys": 'selection.words_weight = 1.0\n[site]\ntitle = "X"\n',
    "quoted key": '[selection]\n"words_weight" = 1.0\n',
    "header in a string": '[site]\ndescription = """\n[selection]\n"""\n[selection]\nwords_weight = 1.0\n',
}


@pytest.mark.parametrize("text", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_written_weights_land_or_nothing_is_written(tmp_path, text):
    import tomllib

    from digest.pick.tune import TuneError
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    try:
        write_weights(path, {"words_weight": 2.0, "reply_weight": 0.25})
    except TuneError as error:
        assert "nothing was written" in str(error) and "\n" not in str(error)
        assert path.read_text(encoding="utf-8") == text
        return
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["selection"]["words_weight"] == 2.0 and data["selection"]["reply_weight"] == 0.25


def test_written_weights_keep_a_trailing_comment_the_mode_and_the_symlink(tmp_path):
    import os
    real = tmp_path / "real.toml"
    real.write_text("[selection]\nwords_weight = 1.0  # the editor likes long comments\n", encoding="utf-8")
    os.chmod(real, 0o600)
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    write_weights(link, {"words_weight": 2.0})
    assert link.is_symlink()
    assert real.read_text(encoding="utf-8") == "[selection]\nwords_weight = 2.0  # the editor likes long comments\n"
    assert real.stat().st_mode & 0o777 == 0o600


# ------------------------------------------------------------------ learning from readers' clicks

def test_preferences_are_corrected_for_the_place_a_thread_was_shown_at():
    from datetime import UTC, datetime

    from digest.db.history import ClickedEdition
    from digest.pick.tune import position_bias, preferences
    day = datetime(2017, 10, 25, tzinfo=UTC)
    first_is_first = [ClickedEdition(n, day, day, {f"a{n}": (1, 12), f"b{n}": (2, 6), f"c{n}": (4, 3)})
                      for n in range(3)]
    bias = position_bias(first_is_first)
    assert bias == {1: 1.0, 2: 0.5, 4: 0.25}                       # what each place draws, measured
    assert preferences(first_is_first[0], bias) == []              # just the order they were shown in
    odd = ClickedEdition(9, day, day, {"top": (1, 12), "low": (4, 6)})
    assert preferences(odd, bias) == [("low", "top")]              # 6 at the fourth place beats 12 at the first
    assert position_bias([odd]) == {1: 1.0, 4: 0.25}               # seen once: 1/place


def test_tune_learns_from_the_threads_readers_opened(demo):
    from dataclasses import replace

    from digest import actions
    from digest.db import Database
    from digest.pick.select import thread_scores
    from digest.signals.clicks import ClickRule
    from digest.web import create_app, services
    sent = run(demo, "send", "weekly", *WEEK, "--yes")
    assert sent.exit_code == 0, sent.output
    settings = config.load(Path(demo))
    with Database.open(settings.database_url()) as db:
        [edition] = db.ledger.sent_editions("weekly")
        links = [link for link in db.ledger.links(edition.id) if link.thread]
        scores = thread_scores(db.content.discussions(edition.since, edition.until), edition.since, edition.until,
                               settings.selection, settings.lists[0].timezone)
        favourite = min({link.thread for link in links}, key=lambda key: scores[key])   # the weights like it least
        app = create_app(settings, db)
        clock = {"now": 0.0}
        app.extensions["digest"] = replace(services(app), clicks=ClickRule(clock=lambda: clock["now"]))
        client = app.test_client()
        from digest.send.signing import click_token
        key = actions.signing_key(settings)
        firsts = {}
        for link in links:
            firsts.setdefault(link.thread, link)
        for reader in range(8):                                  # eight readers open the favourite...
            client.get(f"/c/{click_token(key, edition.id, firsts[favourite].n)}",
                       environ_base={"REMOTE_ADDR": f"10.1.0.{reader}"})
            clock["now"] += 60
        for n, link in enumerate(firsts.values()):               # ...and one reader each of the others
            if link.thread != favourite:
                client.get(f"/c/{click_token(key, edition.id, link.n)}", environ_base={"REMOTE_ADDR": f"10.2.0.{n}"})
                clock["now"] += 60
        assert actions.clicks.of_editions(db, [edition.id])[edition.id]["threads"][favourite] == 8
    result = run(demo, "tune", "weekly")
    assert result.exit_code == 0, result.output
    assert f"weekly: 0 past editions with picks, 1 with readers' clicks ({8 + len(firsts) - 1} clicks)" in result.output
    assert "clicks by place shown (the first = 1.00; corrected for): 1: 1.00, 2: 0.50" in result.output
    now = re.search(r"now\s+.*preferences scored alike (\d+)/(\d+): (\d+)% agreement", result.output)
    tuned = re.search(r"tuned\s+.*preferences scored alike (\d+)/(\d+): (\d+)% agreement", result.output)
    assert now and tuned and now.group(1) == "0" and int(now.group(2)) > 0      # the weights disagree with readers
    assert int(tuned.group(1)) > 0 and "selection." in result.output            # and the tuner finds weights that agree

