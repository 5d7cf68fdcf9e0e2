"""``python -m gmm``: the same command line as the ``gmm`` script (see :mod:`gmm.cli`)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
