"""The ``devicerisk`` entry point: ``devicerisk lookup`` is a thin HTTP client and starts without importing
the pipeline (answers in well under a second); every other command goes to the full command line."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["lookup"]:
        from devicerisk.cli_lookup import lookup_app

        lookup_app(args=sys.argv[2:], prog_name="devicerisk lookup")
        return
    from devicerisk.cli import app

    app()
