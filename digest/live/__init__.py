"""Live: going live and staying there.

In: the whole configuration file (these tools, like the fronts, write or check all of
it) and a blog's address.
Out: a first config and list file (`setup`, for `digest init`); later, the checks a
real send depends on.
"""
