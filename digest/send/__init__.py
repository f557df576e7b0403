"""Send: an edition x a list -> the ledger -> a mailer (SendGrid, SMTP or the outbox).

In: a built edition (`write.edition.Built`), the list and the send settings
(`config.SendSettings`).
Out: ledger rows, one per reader, each marked only after the provider answered: never
twice, never lost; a `SendReport`.

`subscribers` reads the editor's list files; `deliver` freezes the edition with its
ledger and works through it in batches; `message` is one reader's copy (values,
headers, MIME); `signing` signs the links in it; `readiness` refuses a config not
ready for real mail; `mailers/` are the transports behind one small interface.
"""
