"""Write: a selection -> an edition (subject, HTML, text), rendered and inlined once.

In: a `pick.select.Selection`, the list, the period and the write settings
(`config.WriteSettings`: templates, size budget, the site and the public address).
Out: a `models.Edition` whose per-recipient values are tokens, filled in per recipient
at send time, and a `Built` with what was trimmed to fit the size budget.

`periods` says which days an edition covers; `view` turns the selection into what the
subscriber sees; `render` runs the templates and premailer; `edition` fits the result
into Gmail's clipping budget and gives the JSON shape scripts read.
"""
