"""The data package: the only code that writes SQL.

Tables are declared once (tables.py) and changed only by Alembic revisions
(migrations/versions/). Everything else reaches the data through a `Database`.
"""

from __future__ import annotations

from .content import comment_hash, post_hash
from .database import Database, NoDatabase, safe_url
from .locks import holder_id
from .schema import SchemaState

__all__ = ["Database", "NoDatabase", "SchemaState", "comment_hash", "holder_id", "post_hash", "safe_url"]
