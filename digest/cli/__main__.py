"""`python -m digest.cli`: the `digest` command."""

from . import main

main()
