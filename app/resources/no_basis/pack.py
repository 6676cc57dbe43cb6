"""install(): plug the no-basis pack into a registry and a set of hooks (called once from create_app)."""

from __future__ import annotations

from app.fhir.hooks import Hooks, Stage
from app.fhir.registry import Registry
from app.resources.no_basis.hook import no_basis_identifiers
from app.resources.no_basis.search import pack_search_parameters


def install(registry: Registry, hooks: Hooks) -> None:
    """Register the pack's search parameters and its identifier hook. Idempotent: parameters are keyed by
    code, and the hook is added only once, so create_app and a test fixture may both call it.

    Call before the CapabilityStatement is built (or refresh it after), and $reindex resources stored
    before the pack was installed so that the new parameters find them.
    """
    for bases, param in pack_search_parameters():
        for base in bases:
            registry.add_search_param(base, param)
    if no_basis_identifiers not in hooks.before_write:
        hooks.before_write.add(Stage.VALIDATE, no_basis_identifiers)
