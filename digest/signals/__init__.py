"""Signals: what comes back after a send -> suppressions and counts.

In: what a provider or a reader's mail system sends back (SendGrid's signed event
webhook today; a bounce mailbox and click redirects are the next sources).
Out: suppressions (which always win over a list file) and per-edition figures.
"""
