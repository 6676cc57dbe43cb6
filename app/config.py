"""Runtime settings, read from the environment (prefix-free names, as operators expect)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # sqlite+aiosqlite:///./helsebro.db (embedded default) or postgresql+asyncpg://user@host:5432/db
    database_url: str = "sqlite+aiosqlite:///./helsebro.db"
    # Public base URL used in Location headers and Bundle links; empty means "derive from the request".
    base_url: str = ""
    # Largest accepted request body in bytes (413 above it).
    max_body_bytes: int = 10 * 1024 * 1024
    # Whether PUT to a new id creates the resource (update-as-create with a client id).
    allow_update_create: bool = True
    # Default and maximum page size of history bundles.
    default_page_size: int = 50
    max_page_size: int = 1000
    # Connection pool size (PostgreSQL).
    db_pool_size: int = 20
    db_max_overflow: int = 10
    log_level: str = "INFO"
