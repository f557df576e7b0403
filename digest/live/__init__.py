"""Live: going live and staying there.

`setup` finds a blog's feed and writes a first config (`digest init`). These tools see
the whole configuration file, as the fronts do: they write or check all of it.
"""
