"""Send: an edition x a list -> the ledger -> a mailer (SendGrid, SMTP or the outbox).

In: a way to build the edition (`write.edition.Built`, built once by `plan`), the list
and its list file, an open `Database`, and the send settings (`config.SendSettings`:
`[sending]`, the public address, the signing secret's name, paths made absolute).
Out: the edition frozen with its ledger, one delivery per recipient, each marked only
after the provider answered (never twice, never lost), and a `SendReport`; or, for
`--to`, a `TestCopy` that records nothing for the list.

`subscribers` reads and syncs the editor's list files; `deliver` plans, freezes the
edition with its ledger and works through it; `workers` are the senders that claim
its batches (several at once, on PostgreSQL from several machines), at the pace
`pace` keeps; `message` is one recipient's copy (values, headers, MIME); `signing`
seals the tokens of its links; `readiness` refuses a config not ready for real mail;
`mailers/` are the transports behind one small interface, each declaring its backend
(see `digest/backends.py`).
"""
