"""The secured care setting of tests/security (scenario.py seeded, a token per actor), for this pack too."""

from tests.security.conftest import world

__all__ = ["world"]
