"""The secured scenario's `world` (organisations, practitioners, Kari with her GP and hospital stay) for
the core journal's HTTP tests, on SQLite and PostgreSQL."""

from tests.security.conftest import world

__all__ = ["world"]
