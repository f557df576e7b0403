"""Read: the blog's sources -> the database.

In: a source's settings (its URL, kind, backfill window) and the fetch settings.
Out: posts and comments stored in `db.content`, and a `SourceReport` per source.

`fetch` gets bytes over HTTP (or from a local mirror folder, `mirror`) with every limit
a stranger's server needs; `parse` (with `blogger_atom`, Blogger's own Atom reader)
turns them into plain `Post` and `Comment` objects, comment HTML already sanitised;
`ingest` decides what to read and when to stop, so a fetch costs what is new.
"""
