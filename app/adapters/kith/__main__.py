"""`python -m app.adapters.kith convert IN`: see app/adapters/kith/cli.py."""

from __future__ import annotations

import sys

from app.adapters.kith.cli import main

if __name__ == "__main__":
    sys.exit(main())
