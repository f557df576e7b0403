"""The summariser: each scoring rule, each drop rule, sections, pins and the star."""

from __future__ import annotations

from datetime import timedelta

import pytest

from digest.config import Selection as Knobs
from digest.models import Picks
from digest.pick.select import select
from digest.pick.words import Context, is_link_only, strip_noise

from .support.discussions import SINCE, UNTIL, comment, discussion, post, text

KNOBS = Knobs()


def run(*discussions, knobs: Knobs = KNOBS, picks: Picks = Picks()):
    return select(discussions, SINCE, UNTIL, knobs, picks)


def shown(selection) -> list[str]:
    """Keys of the top comments shown, the star first."""
    return [t.top.comment.key for _, t in selection.threads()]


# ------------------------------------------------------------------ own words

def test_urls_date_lines_and_signatures_are_not_own_words():
    body = ("Anonymous 16 December 2016 at 11:55\n\nI agree with this entirely and so does everyone I know.\n\n"
            "https://www.example.org/a/long/link\n\n'Getafix")
    assert strip_noise(body) == "I agree with this entirely and so does everyone I know."
    assert Context().own_words(body) == 11


def test_quoted_passage_of_an_earlier_comment_is_not_counted():
    earlier = text(40, seed=1)
    context = Context()
    context.own_words(earlier)
    quoting = " ".join(earlier.split()[5:25]) + " " + text(10, seed=2)
    assert context.own_words(quoting) == 10


def test_quoting_the_post_is_not_counted():
    body = text(60, seed=3)
    context = Context([body])
    assert context.own_words('"' + " ".join(body.split()[:30]) + '" ' + text(12, seed=4)) == 12


def test_link_only():
    assert is_link_only("http://www.devonlive.com/news/x-698867 'Getafix")
    assert not is_link_only("Read this, it explains the whole mess well: https://example.org/a")


# ------------------------------------------------------------------ scoring rules

def test_longer_comment_scores_higher():
    p = post()
    short, long_ = comment(p, text(30, 1)), comment(p, text(200, 2))
    selection = run(discussion(p, short, long_), knobs=Knobs(comment_of_the_week=False))
    threads = selection.posts[0].threads
    assert [t.top.comment.key for t in threads] == [long_.key, short.key]
    assert threads[0].parts["words"] == 2.0 and threads[1].parts["words"] == 0.3


def test_words_beyond_the_cap_do_not_count():
    p = post()
    huge = comment(p, text(2000, 1))
    thread = run(discussion(p, huge)).star
    assert thread.parts["words"] == KNOBS.max_counted_words / 100


def test_replies_raise_a_shorter_comment_above_a_longer_one():
    p = post()
    lonely = comment(p, text(150, 1))
    asked = comment(p, text(40, 2))
    replies = [comment(p, text(50, 10 + i), parent=asked) for i in range(3)]
    selection = run(discussion(p, lonely, asked, *replies), knobs=Knobs(comment_of_the_week=False))
    best = selection.posts[0].threads[0]
    assert best.top.comment.key == asked.key
    assert best.parts == {"words": 0.4, "replies": 3.0, "reply_words": 0.75, "repliers": 1.5}
    assert best.score == pytest.approx(5.65)


def test_reply_length_counts():
    p = post()
    a, b = comment(p, text(50, 1)), comment(p, text(50, 2))
    ra, rb = comment(p, text(20, 3), parent=a), comment(p, text(300, 4), parent=b)
    threads = run(discussion(p, a, b, ra, rb), knobs=Knobs(comment_of_the_week=False)).posts[0].threads
    assert threads[0].top.comment.key == b.key
    assert threads[0].parts["reply_words"] > threads[1].parts["reply_words"]


def test_distinct_repliers_count_once_and_the_author_answering_not_at_all():
    p = post()
    top = comment(p, text(50, 1), author="Getafix")
    replies = [comment(p, text(20, 2), parent=top, author="Jim Brown"),
               comment(p, text(20, 3), parent=top, author="Jim Brown"),
               comment(p, text(20, 4), parent=top, author="Getafix"),
               comment(p, text(20, 5), parent=top, author="Anonymous")]
    thread = run(discussion(p, top, *replies)).star
    assert thread.parts["repliers"] == 2 * KNOBS.replier_weight   # Jim Brown once, one anonymous


def test_weights_come_from_the_knobs():
    p = post()
    top = comment(p, text(100, 1))
    reply = comment(p, text(100, 2), parent=top)
    knobs = Knobs(words_weight=3, reply_weight=0, reply_words_weight=0, replier_weight=0)
    assert run(discussion(p, top, reply), knobs=knobs).star.score == 3.0


def test_best_replies_are_shown_in_order_and_the_rest_counted():
    p = post()
    top = comment(p, text(50, 1))
    replies = [comment(p, text(n, 10 + n), parent=top) for n in (20, 90, 60, 30)]
    (thread,) = run(discussion(p, top, *replies), knobs=Knobs(comment_of_the_week=False)).posts[0].threads
    assert [r.comment.key for r in thread.replies] == [replies[1].key, replies[2].key]   # oldest first
    assert thread.more_replies == 2 and thread.reply_count == 4


# ------------------------------------------------------------------ drop rules

def test_removed_comment_is_dropped_and_its_replies_go_with_it():
    p = post()
    gone = comment(p, "", removed=True)
    comment(p, text(50, 1), parent=gone)
    kept = comment(p, text(30, 2))
    selection = run(discussion(p, gone, kept))
    assert shown(selection) == [kept.key]
    assert selection.dropped["removed"] == 1


def test_exact_duplicate_is_dropped():
    p = post()
    first = comment(p, text(40, 1))
    again = comment(p, text(40, 1))
    selection = run(discussion(p, first, again))
    assert shown(selection) == [first.key] and selection.dropped["duplicate"] == 1


def test_link_only_and_very_short_comments_are_dropped():
    p = post()
    link = comment(p, "https://www.consultancy.uk/news/14310/ailing-interserve Oops!")
    short = comment(p, "well said, I couldn't agree more !")
    real = comment(p, text(40, 1))
    selection = run(discussion(p, link, short, real))
    assert shown(selection) == [real.key]
    assert selection.dropped == {"link-only": 1, "short": 1}


def test_duplicate_reply_does_not_count():
    p = post()
    top = comment(p, text(40, 1))
    r1 = comment(p, text(30, 2), parent=top)
    r2 = comment(p, text(30, 2), parent=top)
    assert run(discussion(p, top, r1, r2)).star.reply_count == 1


# ------------------------------------------------------------------ sections and period

def test_sections_new_and_still_discussed():
    new = post("New one", SINCE + timedelta(days=2))
    quiet = post("Quiet new one", SINCE + timedelta(days=3))
    old = post("Old but busy", SINCE - timedelta(days=400))
    dead = post("Old and quiet", SINCE - timedelta(days=400))
    selection = run(discussion(new, comment(new, text(30, 1))), discussion(quiet),
                    discussion(old, comment(old, text(30, 2), at=SINCE + timedelta(days=1)),
                               comment(old, text(30, 3), at=SINCE - timedelta(days=100))),
                    discussion(dead, comment(dead, text(30, 4), at=SINCE - timedelta(days=1))))
    assert [(p.post.title, p.section) for p in selection.posts] == [
        ("Quiet new one", "new"), ("New one", "new"), ("Old but busy", "discussed")]
    busy = selection.posts[2]
    assert (busy.comments_total, busy.new_comments) == (2, 1)


def test_old_thread_with_a_new_reply_is_shown_but_old_silent_ones_are_not():
    old = post("Old", SINCE - timedelta(days=30))
    revived = comment(old, text(30, 1), at=SINCE - timedelta(days=20))
    comment_new = comment(old, text(30, 2), at=SINCE + timedelta(days=1), parent=revived)
    silent = comment(old, text(300, 3), at=SINCE - timedelta(days=20))
    selection = run(discussion(old, revived, comment_new, silent))
    assert shown(selection) == [revived.key]


def test_comments_after_the_period_are_ignored():
    p = post()
    late = comment(p, text(300, 1), at=UNTIL + timedelta(hours=1))
    ok = comment(p, text(20, 2))
    selection = run(discussion(p, late, ok))
    assert shown(selection) == [ok.key] and selection.posts[0].comments_total == 1


def test_threads_per_post_limit():
    p = post()
    comments = [comment(p, text(40 + i, i)) for i in range(6)]          # the star has 40 own words or more
    selection = run(discussion(p, *comments), knobs=Knobs(threads_per_post=2))
    assert len(selection.posts[0].threads) == 2 and selection.star is not None


# ------------------------------------------------------------------ star and editor's picks

def test_star_is_the_best_thread_and_is_not_repeated_in_its_post():
    a, b = post("A"), post("B")
    best = comment(b, text(300, 1))
    other = comment(b, text(40, 2))
    selection = run(discussion(a, comment(a, text(50, 3))), discussion(b, best, other))
    assert selection.star.top.comment.key == best.key and selection.star_post.title == "B"
    assert [t.top.comment.key for t in selection.posts[1].threads] == [other.key]


def test_pinned_comment_is_shown_and_becomes_the_star():
    p = post()
    big = comment(p, text(300, 1))
    tiny = comment(p, "Spot on.")
    selection = run(discussion(p, big, tiny), picks=Picks(pinned=frozenset({tiny.key})))
    assert selection.star.top.comment.key == tiny.key and selection.star.pinned
    assert [t.top.comment.key for t in selection.posts[0].threads] == [big.key]


def test_pinned_reply_is_shown_in_its_thread():
    p = post()
    top = comment(p, text(60, 1))
    replies = [comment(p, text(100, 2), parent=top), comment(p, text(90, 3), parent=top),
               comment(p, text(16, 4), parent=top)]
    thread = run(discussion(p, top, *replies), picks=Picks(pinned=frozenset({replies[2].key}))).star
    assert replies[2].key in [r.comment.key for r in thread.replies] and thread.pinned


def test_excluded_comment_is_not_shown_anywhere():
    p = post()
    best = comment(p, text(300, 1))
    second = comment(p, text(100, 2))
    reply = comment(p, text(80, 3), parent=second)
    selection = run(discussion(p, best, second, reply), picks=Picks(excluded=frozenset({best.key, reply.key})))
    assert shown(selection) == [second.key]
    assert selection.star.replies == [] and selection.dropped["excluded"] == 2


def test_no_comment_of_the_week_when_switched_off():
    p = post()
    selection = run(discussion(p, comment(p, text(40, 1))), knobs=Knobs(comment_of_the_week=False))
    assert selection.star is None and len(selection.posts[0].threads) == 1
