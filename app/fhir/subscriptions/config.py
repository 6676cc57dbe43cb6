"""What the subscription machinery needs from the settings (the engine never reads app.config itself)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SubscriptionConfig:
    worker: bool = True  # deliver from this process (every process fills the outbox either way)
    poll_seconds: float = 1.0  # how often the worker looks for due rows when nothing woke it
    retry_base_seconds: float = 5.0  # first retry delay; doubled per failed attempt
    retry_max_seconds: float = 600.0
    max_attempts: int = 12  # then the notification is failed and the subscription goes to "error"
    timeout_seconds: float = 10.0  # per HTTP request to a subscriber
    cache_seconds: float = 2.0  # active subscriptions written by other processes show up within this
    batch: int = 16  # subscriptions served per round, concurrently
    keep_delivered_hours: float = 24.0  # delivered rows are kept this long for operators, then purged
    # Endpoints notifications may go to (see endpoints.py); empty: any but loopback and link-local.
    endpoint_allowlist: tuple[str, ...] = ()

    def retry_delay(self, attempts: int) -> float:
        """Exponential backoff after `attempts` failed attempts (1, 2, ...)."""
        return float(min(self.retry_base_seconds * 2 ** max(attempts - 1, 0), self.retry_max_seconds))

    @property
    def lease_seconds(self) -> float:
        """How long a claimed row belongs to the claiming process: longer than any delivery can take, so
        a row is only taken over from a process that died while delivering it."""
        return 2 * self.timeout_seconds + 30.0
