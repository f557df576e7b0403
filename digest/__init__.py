"""digest: email digests of a comment-heavy blog's best discussions."""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
