"""The subscription tests' receiver and running apps (with their own databases), for PLO notices."""

from tests.fhir.subscriptions.conftest import make_app, receiver, subscription_databases

__all__ = ["make_app", "receiver", "subscription_databases"]
