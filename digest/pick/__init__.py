"""Pick: the stored discussions of a period -> the threads worth reading.

In: `Discussion`s from the database, the period, the selection knobs
(`config.Selection`) and the editor's pins and excludes (`models.Picks`).
Out: a `Selection`: posts, their ranked threads with each score's parts, and the
comment of the week.

`select` scores and ranks; `conversation` finds who answers whom in a flat thread;
`words` counts a comment's own words (not what it quotes); `tune` replays past
editions to find weights that agree with the editor (and, later, the readers).
"""
