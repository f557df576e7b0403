"""Checked by a tool nobody here wrote (issue 26): axe-core (WCAG 2.0/2.1 A and AA rules and
its best practices), in Debian's Chromium, finds nothing on the edition at 390 and 1280 px,
light and dark, nor on any page a reader or the editor opens (the archive copy with its
subscribe prompt among them: its links once fell to 1.98:1 in dark mode)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_browser import site  # noqa: F401 - the fixture: a served world (Chromium is conftest's `browser`)
from .test_email_look import demo_week, world  # noqa: F401 - the fixture

AXE = (Path(__file__).resolve().parent / "data" / "axe" / "axe.min.js").read_text(encoding="utf-8")
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
RUN = """async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}})).violations.map(
    v => `${v.id} (${v.impact}): ` + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))"""
SCHEMES = ("light", "dark")
PUBLIC = ["/archive/weekly/2017-10-25", "/archive/weekly/", "/subscribe/weekly", "/subscribe/weekly/embed",
          "/editor/login", "/unsubscribe/not-a-token", "/confirm/not-a-token"]
EDITOR = ["/editor/", "/editor/weekly?since=2017-10-25&until=2017-11-01", "/editor/weekly/subscribers",
          "/editor/weekly/email.html?since=2017-10-25&until=2017-11-01"]


def violations(page) -> list[str]:  # noqa: ANN001 - a Playwright page
    page.add_script_tag(content=AXE)
    return page.evaluate(RUN, RULES)


@pytest.mark.parametrize("width", [390, 1280])
def test_the_edition_has_no_violations_light_or_dark(world, browser, width):  # noqa: F811
    html = demo_week(world)
    for scheme in SCHEMES:
        page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
        page.set_content(html, wait_until="load")
        assert violations(page) == [], (width, scheme)
        page.close()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_page_has_no_violations_in_light_and_in_dark(site, browser, scheme):  # noqa: F811
    _, base = site
    context = browser.new_context(bypass_csp=True)           # the pages allow no inline script: axe is one
    login = context.new_page()
    login.goto(f"{base}/editor/login")
    login.fill("input[name=password]", "editor-pass")
    login.click("button[type=submit]")
    found = {}
    for path in PUBLIC + EDITOR:
        for width in (390, 1280):
            page = context.new_page()
            page.set_viewport_size({"width": width, "height": 900})
            page.emulate_media(color_scheme=scheme)
            page.goto(base + path)
            if path in EDITOR:
                assert "/login" not in page.url, path                   # really the editor's page
            found[(path, width)] = violations(page)
            page.close()
    assert {key: found_ for key, found_ in found.items() if found_} == {}
