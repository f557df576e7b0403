"""Pick: the stored discussions of a period -> the threads worth reading.

In: `Discussion`s from the database, the period, the selection knobs
(`config.Selection`) and the editor's pins and excludes (`models.Picks`); for `tune`,
the database (past editions, their picks and their clicks).
Out: a `Selection`: posts, their ranked threads with each score's parts, and the
comment of the week; from `tune`, a `Tuning`: how well the weights agree, and weights
that agree better.

`select` scores and ranks; `conversation` finds who answers whom in a flat thread;
`words` counts a comment's own words (not what it quotes), `paste` how much of it is
pasted from elsewhere, and `tags` reads past the reply tags it opens with; `rules`
are the editorial rules (housekeeping, abuse, a bare thanks) that keep a comment out
whatever it scores; `tune` replays past editions to find weights that agree with the
editor's pins and excludes and with the threads subscribers clicked.
"""
