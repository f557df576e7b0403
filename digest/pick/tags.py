"""Reply tags: how a comment on a blog says whom it answers before it says anything.

"@Anin 08:33", "Annon@ 8:33", "Anon 12:19", "@Getafix,", "Getafix @ 12:19", "Re:": the
tags a comment opens with, which the inbox line and the editorial rules read past.
"""

from __future__ import annotations

import re

_TIME = r"\d{1,2}[:.]\d{2}\b"
_TAG = re.compile(
    rf"""\W*?(?:
        @\s*[^\W\d][\w.'’-]*(?:\s*(?:at\s+)?{_TIME})?          # @name, @name 08:33
      | (?:anon\w*|annon\w*|anonymous)\s*(?:@|at)?\s*{_TIME}    # Anon 12:19, Annon@ 8:33
      | [^\W\d][\w.'’-]*\s*@\s*{_TIME}                          # Getafix @ 12:19
      | (?:@\s*|at\s+){_TIME}                                   # @ 08:33, at 10.47
      | {_TIME}(?=\s*[-–—:,])                                    # 08:33 - (a bare time is a tag before a dash)
      | re\s*:                                                  # Re:
    )[\s,:;.\-–—)]*""", re.IGNORECASE | re.VERBOSE)


HEAD = 500        # tags open a comment: only its first characters are read for them


def untagged(text: str) -> str:
    """The text without the reply tags it opens with (one after another)."""
    start = 0
    while start < HEAD and (found := _TAG.match(text, start)) and found.end() > start:
        start = found.end()
    return text[start:].strip()
