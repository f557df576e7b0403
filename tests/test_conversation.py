"""Conversations inside flat threads (issue 13): who answers whom, replies by substance,
depth that follows quality, and a comment of the week that is a comment."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.config import Selection as Knobs
from digest.models import Picks
from digest.pick import conversation
from digest.pick.select import select

from .support.discussions import SINCE, UNTIL, comment, discussion, post, text

LONDON = ZoneInfo("Europe/London")


def links_of(*comments, body: str = "The post body.", zone=UTC):
    return {(link.source, link.target, link.kind) for link in conversation.infer(comments, body, zone)}


# ------------------------------------------------------------------ evidence

def test_a_quotation_of_eight_words_answers_the_comment_quoted():
    p = post()
    said = comment(p, text(40, 1), author="Jo")
    other = comment(p, text(40, 2))
    quoting = comment(p, '"' + " ".join(said.text.split()[3:13]) + '" ' + text(20, 3))
    assert (quoting.key, said.key, "quote") in links_of(said, other, quoting)
    assert not any(target == other.key for source, target, _ in links_of(said, other, quoting)
                   if source == quoting.key)


def test_quoting_the_post_is_not_answering_a_comment_that_quoted_it_too():
    body = text(60, 9)
    p = post(body=body)
    first = comment(p, " ".join(body.split()[:12]) + " " + text(20, 1))
    second = comment(p, " ".join(body.split()[:12]) + " " + text(20, 2))
    assert not any(kind == "quote" for _, _, kind in links_of(first, second, body=body))


def test_addressing_by_name_or_signature_answers_that_persons_latest_comment():
    p = post()
    older = comment(p, text(30, 1), author="Getafix")
    newer = comment(p, text(30, 2), author="Getafix")
    signed = comment(p, text(30, 3) + "\n\n'Netnipper")
    for opening in ("@Getafix " + text(10, 4), "Getafix said it well. " + text(10, 5), "Getafix, " + text(10, 6)):
        answer = comment(p, opening)
        assert (answer.key, newer.key, "name") in links_of(older, newer, signed, answer)
        assert (answer.key, older.key, "name") not in links_of(older, newer, signed, answer)
    to_signature = comment(p, "Netnipper, " + text(10, 7))
    assert (to_signature.key, signed.key, "name") in links_of(older, signed, to_signature)
    assert links_of(comment(p, text(10, 8), author="Anonymous"), comment(p, "Anonymous, " + text(5, 9))) == set()


def test_a_time_reference_answers_the_comment_written_then_in_the_lists_zone():
    p = post(published=datetime(2017, 10, 27, 6, tzinfo=UTC))
    at_nine = comment(p, text(30, 1), at=datetime(2017, 10, 27, 8, 1, tzinfo=UTC))   # 09:01 in London (BST)
    other = comment(p, text(30, 2), at=datetime(2017, 10, 27, 8, 30, tzinfo=UTC))
    for words in ("Anon at 09.01 is right", "the 9:01 comment", "@ 09:02 yes", "Annon@ 9.01 quite"):
        answer = comment(p, words + " " + text(20, 3), at=datetime(2017, 10, 27, 12, tzinfo=UTC))
        assert (answer.key, at_nine.key, "time") in links_of(at_nine, other, answer, zone=LONDON), words
    meeting = comment(p, "I have a 9.01 am meeting " + text(20, 4), at=datetime(2017, 10, 27, 12, tzinfo=UTC))
    assert not links_of(at_nine, other, meeting, zone=LONDON)


def test_last_two_posters_answers_the_two_comments_before():
    p = post()
    a, b, c = (comment(p, text(30, n)) for n in (1, 2, 3))
    answer = comment(p, "Last two posters make good points. " + text(20, 4))
    found = links_of(a, b, c, answer)
    assert {(answer.key, b.key, "previous"), (answer.key, c.key, "previous")} <= found
    assert (answer.key, a.key, "previous") not in found


def test_a_nested_parent_from_the_feed_is_taken_as_given():
    p = post()
    top = comment(p, text(30, 1))
    middle = comment(p, text(30, 2), parent=top)
    from dataclasses import replace
    deep = replace(comment(p, text(30, 3), parent=top), answers=middle.key)
    assert (deep.key, middle.key, "nested") in links_of(top, middle, deep)
    link = next(link for link in conversation.infer([top, middle, deep]) if link.source == deep.key)
    assert link.confidence == 1.0 and link.evidence


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=200), min_size=1, max_size=8))
def test_any_text_gives_links_only_to_earlier_comments(bodies):
    p = post()
    comments = [comment(p, body) for body in bodies]
    order = {c.key: i for i, c in enumerate(comments)}
    for link in conversation.infer(comments, "", LONDON):
        assert order[link.target] < order[link.source] and 0 < link.confidence <= 1


# ------------------------------------------------------------------ replies by substance

def test_a_short_reply_that_drew_three_responses_beats_a_long_one_that_drew_none():
    p = post()
    top = comment(p, text(80, 1))
    lonely = comment(p, text(330, 2), parent=top)
    asked = comment(p, text(60, 3), parent=top, author="Netnipper")
    answers = [comment(p, f"{name}: @Netnipper " + text(30, 10 + n), parent=top, author=name)
               for n, name in enumerate(("Jo", "Sam", "Kit"))]
    knobs = Knobs(replies_per_thread=1, comment_of_the_week=False)
    (thread,) = select([discussion(p, top, lonely, asked, *answers)], SINCE, UNTIL, knobs).posts[0].threads
    scored = {r.comment.key: r for r in thread.every}
    assert scored[asked.key].score > scored[lonely.key].score
    assert asked.key in {r.comment.key for r in thread.replies}
    assert scored[asked.key].parts["responses"] == 3 * knobs.response_weight
    assert scored[asked.key].parts["responders"] == 3 * knobs.responder_weight


def test_a_reply_answering_someone_else_says_whom():
    p = post()
    top = comment(p, text(80, 1))
    first = comment(p, text(120, 2), parent=top, author="Getafix")
    answer = comment(p, "@Getafix " + text(100, 3), parent=top)
    (thread,) = select([discussion(p, top, first, answer)], SINCE, UNTIL,
                       Knobs(comment_of_the_week=False)).posts[0].threads
    named = {r.comment.key: r.comment.reply_to for r in thread.replies}
    assert named == {first.key: None, answer.key: "Getafix"}


def test_a_reply_well_above_the_posts_others_is_shown_third():
    p = post()
    tops = [comment(p, text(60, n)) for n in range(3)]
    plain = [comment(p, text(20, 10 + n), parent=tops[n % 3]) for n in range(9)]
    kit = comment(p, text(250, 60), parent=tops[0], author="Kit")
    long_ones = [comment(p, text(300, 40 + n), parent=tops[0]) for n in range(2)]
    answers = [comment(p, "@Kit " + text(30, 50 + n), parent=tops[0], author=f"P{n}") for n in range(3)]
    selection = select([discussion(p, *tops, *plain, kit, *long_ones, *answers)], SINCE, UNTIL,
                       Knobs(comment_of_the_week=False, replies_per_thread=2))
    threads = {t.top.comment.key: t for t in selection.posts[0].threads}
    assert {r.comment.key for r in threads[tops[0].key].replies} == {kit.key, *(c.key for c in long_ones)}
    assert all(len(threads[t.key].replies) <= 2 for t in tops[1:] if t.key in threads)


# ------------------------------------------------------------------ the comment of the week

def test_the_comment_of_the_week_can_be_a_reply_shown_with_what_it_answers_and_drew():
    p = post()
    top = comment(p, text(30, 1))
    asked = comment(p, text(40, 2), parent=top, author="Jo")
    star = comment(p, "@Jo " + text(120, 3), parent=top, author="Sam")
    responses = [comment(p, "@Sam " + text(40, 10 + n), parent=top, author=name)
                 for n, name in enumerate(("Kit", "Lee", "Max"))]
    filler = [comment(p, text(100, 20))]
    selection = select([discussion(p, top, asked, star, *responses, *filler)], SINCE, UNTIL, Knobs(star_replies=5))
    assert selection.star_key == star.key
    shown = [r.comment.key for r in selection.star.replies]
    assert len(shown) == 5 and {star.key, asked.key} <= set(shown)
    assert sum(key in shown for key in (r.key for r in responses)) >= 2
    assert shown == sorted(shown, key=lambda k: next(c.published for c in (asked, star, *responses, *filler)
                                                     if c.key == k))          # conversation order


def test_a_pinned_comment_is_still_the_comment_of_the_week():
    p = post()
    top = comment(p, text(300, 1))
    replies = [comment(p, text(200, 2 + n), parent=top) for n in range(3)]
    quiet = comment(p, text(20, 9))
    selection = select([discussion(p, top, *replies, quiet)], SINCE, UNTIL, Knobs(),
                       Picks(pinned=frozenset({quiet.key})))
    assert selection.star_key == quiet.key and selection.star.top.comment.key == quiet.key


def test_the_stars_thread_shows_more_than_other_threads():
    p = post()
    tops = [comment(p, text(200, 1)), comment(p, text(60, 2))]
    replies = [comment(p, text(80, 10 + n), parent=tops[n % 2]) for n in range(12)]
    selection = select([discussion(p, *tops, *replies)], SINCE, UNTIL, Knobs(star_replies=4, replies_per_thread=2))
    assert len(selection.star.replies) == 4
    assert all(len(t.replies) <= 3 for t in selection.posts[0].threads)


def test_the_sample_week_napo_post_shows_the_editors_picks(editorial: tuple[str, dict]):
    """Issue 13's measure on real comments: at least five of the editor's six picks on the
    Napo post, at most nine comments there (bench/editorial.py prints the whole table)."""
    found = editorial[1]
    assert found["napo_picks_shown"] >= 5 and found["napo_comments_shown"] <= 9, found
    assert found["cotw_editor_pick"] is True
    before = {"Reaction To Panorama": (4, 9, 1), "Napo Responds To Panorama": (3, 6, 0)}   # issue 13's baseline
    for title, (hit, shown, must_not) in before.items():
        figures = found["posts"][title]
        assert figures["best_hit"] >= hit and figures["must_not"] <= must_not
        assert figures["best_hit"] / figures["shown"] >= hit / shown - 0.15


def test_an_edition_too_big_drops_extra_replies_before_any_thread():
    from digest import config
    from digest.write.edition import as_json, fit
    from digest.write.render import Renderer

    p = post()
    tops = [comment(p, text(60, n)) for n in range(3)]                # too short for shortening to help
    replies = [comment(p, text(50, 10 + n), parent=tops[n % 3]) for n in range(12)]
    settings = config.from_dict({"lists": [{"name": "weekly", "file": "w.csv"}]})
    selection = select([discussion(p, *tops, *replies)], SINCE, UNTIL, settings.selection)
    assert len(selection.star.replies) == 4                         # the star's thread shows more...
    whole = fit(selection, Renderer(settings.write_settings()), settings.lists[0], 10**6)
    budget = whole.html_bytes - 1                                     # ...until the edition must shrink
    data = as_json(fit(selection, Renderer(settings.write_settings()), settings.lists[0], budget, 250))
    assert len(data["comment_of_the_week"]["replies"]) == 2           # extra replies went first
    assert len(data["posts"][0]["threads"]) == 2                      # every other thread stayed
    assert data["comment_of_the_week"]["more_replies"] == 2


def test_the_editor_shows_each_comments_score_and_the_evidence_of_who_answers_whom(tmp_path, monkeypatch):
    import shutil
    from pathlib import Path

    from click.testing import CliRunner

    from digest import config
    from digest.cli import cli
    from digest.db import Database
    from digest.web import create_app

    root = Path(__file__).resolve().parent.parent
    shutil.copytree(root / "examples", tmp_path / "examples")
    path = tmp_path / "examples" / "config.toml"
    assert CliRunner().invoke(cli, ["--config", str(path), "fetch"]).exit_code == 0
    settings = config.load(path)
    monkeypatch.setenv(settings.web.editor_password_env, "a long editor password")
    with Database.open(settings.database_url()) as db:
        client = create_app(settings, db).test_client()
        import re
        login = client.get("/editor/login").get_data(as_text=True)
        token = re.search(r'name="csrf" value="([^"]+)"', login).group(1)
        client.post("/editor/login", data={"csrf": token, "password": "a long editor password"})
        page = client.get("/editor/weekly?since=2017-10-25&until=2017-11-01")
        body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "own words" in body and "responses" in body and "quoted by" in body
    assert "(time, 0.7): names the time at 09.01" in body or "(previous, 0.5): Last two posters" in body
    assert 'id="logout"' in body


def test_a_common_opening_word_as_a_name_does_not_collect_responses():
    """A commenter calling himself "Well" is not addressed by every "Well, ..." (an attack:
    his spam collected the responses and became the comment of the week)."""
    p = post()
    top = comment(p, text(80, 1), author="Getafix")
    spam = comment(p, "Buy cheap watches at my site, best prices anywhere on the internet today, honestly a "
                      "bargain for everyone reading this blog, click the link now.", parent=top, author="Well")
    others = [comment(p, opener + text(60, 10 + n), parent=top, author=name)
              for n, (opener, name) in enumerate((("Well, ", "Netnipper"), ("Well said. ", "Jo"),
                                                  ("Well, ", "Sam"), ("Well, ", "Kit")))]
    links = conversation.infer([top, spam, *others], "The post body.")
    named = [link for link in links if link.target == spam.key]
    chosen = select([discussion(p, top, spam, *others)], SINCE, UNTIL, Knobs())
    assert chosen.star_key != spam.key, "the spam comment is the comment of the week"
    assert not named, named
