"""Command line: `python -m prunelab run|list|resume|suite|jobs` (see prunelab.cli.main)."""

from prunelab.cli.main import main

__all__ = ["main"]
