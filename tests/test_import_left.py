"""Exports say who has left; those rows are not members. Two columns of one kind: the
first is the one read. (Found by a stranger's attack on issue 12's importer.)"""

from __future__ import annotations

import pytest

from digest.send.subscribers import read_csv

LEFT = {
    "buttondown": "email_address,notes,metadata,tags,creation_date,type\n"
                  "gone@myblog.org,,{},,2024-01-02,unsubscribed\nstays@myblog.org,,{},,2024-01-02,regular\n",
    "buttondown-old": "email;creation_date;subscriber_type\ngone@myblog.org;2024-01-02;unsubscribed\n"
                      "stays@myblog.org;2024-01-02;regular\n",
    "substack": "email,active_subscription,expiry,plan,email_disabled,created_at\n"
                "gone@myblog.org,false,,free,true,2024-01-02T10:00:00.000Z\n"
                "stays@myblog.org,false,,free,false,2024-01-02T10:00:00.000Z\n",
    "mailchimp unsubscribed": '"Email Address","First Name","Last Name",UNSUB_TIME,UNSUB_CAMPAIGN_TITLE\n'
                              '"gone@myblog.org","Pat","Jones","2024-01-02 10:00:00",""\n',
    "mailchimp cleaned": '"Email Address","First Name","Last Name",CLEAN_TIME,CLEAN_CAMPAIGN_TITLE\n'
                         '"gone@myblog.org","Pat","Jones","2024-01-02 10:00:00",""\n',
}


def read(tmp_path, text):
    path = tmp_path / "weekly.csv"
    path.write_text(text, encoding="utf-8")
    return read_csv(path)


@pytest.mark.parametrize("kind", sorted(LEFT))
def test_a_row_the_export_marks_as_gone_is_not_a_member(tmp_path, kind, caplog):
    found = read(tmp_path, LEFT[kind])
    emails = [m.email for m in found.subscribers]
    assert "gone@myblog.org" not in emails and not found.problems
    assert emails == (["stays@myblog.org"] if "stays@" in LEFT[kind] else [])
    assert "not taken: the export's" in caplog.text and "says they left" in caplog.text


def test_the_first_column_of_a_kind_is_the_one_read(tmp_path):
    found = read(tmp_path, "Email Address,Email,name\nreal@myblog.org,other@myblog.org,Bob\n")
    assert [m.email for m in found.subscribers] == ["real@myblog.org"]
    found = read(tmp_path, "email,Full Name,Name\na@myblog.org,Real Name,Other\n")
    assert [m.name for m in found.subscribers] == ["Real Name"]
    found = read(tmp_path, "Email Address,Email,name\nreal@myblog.org,,Bob\n")
    assert [m.email for m in found.subscribers] == ["real@myblog.org"] and not found.problems
