"""A small WordPress blog, written as WordPress serves it: RSS2 posts, Atom comment
feeds with thr:in-reply-to, and the REST API's comments endpoint."""

from __future__ import annotations

import json
from html import escape
from urllib.parse import urlencode

from .feedserver import FeedServer

POSTS = [
    {"id": 101, "slug": "probation-news", "title": "Probation news", "date": "2017-10-27T08:00:00+00:00",
     "comments": [
         {"id": 1, "parent": 0, "author": "Reader A", "date": "2017-10-27T09:00:00",
          "text": "A long first comment about the news."},
         {"id": 2, "parent": 1, "author": "Reader B", "date": "2017-10-27T10:00:00", "text": "A reply to the first."},
         {"id": 3, "parent": 0, "author": "Reader C", "date": "2017-10-27T11:00:00",
          "text": "<b>Bold</b> second thread <script>x()</script>"},
         {"id": 4, "parent": 3, "author": "Reader A", "date": "2017-10-27T12:00:00", "text": "Answering C."},
     ]},
    {"id": 102, "slug": "quiet-post", "title": "A quiet post", "date": "2017-10-28T08:00:00+00:00", "comments": []},
]


def publish(server: FeedServer, posts: list[dict] = POSTS, api: bool = True) -> str:
    """Serve the blog; return the posts feed URL."""
    base = server.base_url
    server.add("/feed/", _rss(base, posts).encode(), "application/rss+xml; charset=UTF-8")
    for post in posts:
        server.add(f"/{post['slug']}/feed/atom/", _atom(base, post).encode())
        query = urlencode({"post": post["id"], "per_page": 100, "page": 1, "orderby": "id"})
        if api:
            server.add(f"/wp-json/wp/v2/comments?{query}", json.dumps(_api(base, post)).encode(), "application/json")
    return f"{base}/feed/"


def _rss(base: str, posts: list[dict]) -> str:
    items = "".join(f"""
    <item><title>{escape(p['title'])}</title><link>{base}/{p['slug']}/</link>
      <guid isPermaLink="false">{base}/?p={p['id']}</guid>
      <pubDate>{_rfc822(p['date'])}</pubDate><dc:creator>editor</dc:creator>
      <content:encoded><![CDATA[<p>Body of {escape(p['title'])}</p>]]></content:encoded>
      <wfw:commentRss>{base}/{p['slug']}/feed/</wfw:commentRss>
      <slash:comments>{len(p['comments'])}</slash:comments></item>""" for p in reversed(posts))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:wfw="http://wellformedweb.org/CommentAPI/"
 xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:slash="http://purl.org/rss/1.0/modules/slash/">
<channel><title>WP blog</title><link>{base}/</link><description>d</description>
<generator>https://wordpress.org/?v=6.4</generator>{items}
</channel></rss>"""


def _atom(base: str, post: dict) -> str:
    entries = []
    for c in reversed(post["comments"]):
        ref = f"{base}/{post['slug']}/#comment-{c['parent']}" if c["parent"] else f"{base}/?p={post['id']}"
        entries.append(f"""<entry><title>By: {escape(c['author'])}</title>
  <link rel="alternate" href="{base}/{post['slug']}/#comment-{c['id']}" type="text/html"/>
  <author><name>{escape(c['author'])}</name></author>
  <id>{base}/{post['slug']}/#comment-{c['id']}</id>
  <updated>{c['date']}Z</updated><published>{c['date']}Z</published>
  <content type="html">{escape(c['text'])}</content>
  <thr:in-reply-to ref="{ref}" href="{base}/{post['slug']}/" type="text/html"/></entry>""")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:thr="http://purl.org/syndication/thread/1.0">
<title>Comments on: {escape(post['title'])}</title><id>{base}/{post['slug']}/feed/atom/</id>
<updated>2017-10-31T00:00:00Z</updated><generator uri="https://wordpress.org/">WordPress</generator>
{''.join(entries)}</feed>"""


def _api(base: str, post: dict) -> list[dict]:
    return [{"id": c["id"], "post": post["id"], "parent": c["parent"], "author_name": c["author"],
             "date": c["date"], "date_gmt": c["date"], "link": f"{base}/{post['slug']}/#comment-{c['id']}",
             "content": {"rendered": f"<p>{c['text']}</p>\n"}} for c in post["comments"]]


def _rfc822(iso: str) -> str:
    from datetime import datetime
    return datetime.fromisoformat(iso).strftime("%a, %d %b %Y %H:%M:%S +0000")
