"""`python -m digest`: the `digest` command."""

from .cli import main

main()
