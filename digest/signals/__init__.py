"""Signals: what comes back after a send -> suppressions, marked deliveries and counts.

In: what comes back from a sent edition: a provider's signed events at
POST /webhooks/<backend> (the raw body and its headers), the messages of the mailbox
(raw bytes from a Maildir or an IMAP folder: bounces, and in mail mode what readers and
the editor ask by mail), and clicks on an edition's links (the client, the edition and
the link's number).
Out: suppressions (which always win over a list file) and deliveries marked bounced or
complained, each event or message applied once; for a click, the changes to its
edition's counts per link (never per subscriber).

`webhooks` receives a provider's events by the route its backend declares (see
`backends.Events`), and `sendgrid` is SendGrid's event reader: verify, read, apply;
`mailbox` opens the bounce mailbox and hands over each message not yet read, and
`bounces` says what one means (a `Bounce`: hard, soft, complaint, auto-reply or
unknown, and whom it is about), which `actions.bounces` applies through `db.bounces`;
`addresses` routes a message by the plus address it came to (subscribe, unsubscribe,
confirm, approve) and tells automatic mail apart (RFC 3834), `replies` reads the words of
a reply and `authresults` what the receiving server vouched for (RFC 8601), which
`actions.by_mail` acts on;
`clicks` is the rule for which clicks count (`ClickRule`: no HEAD, no scanner's burst).
"""
