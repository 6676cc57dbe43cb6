"""The citizen portal (helsenorge-style): a page served by the app that calls the FHIR API like any
client, with a citizen's token. See README.md in this folder."""

from app.portal.routes import PUBLIC_PATHS, router

__all__ = ["PUBLIC_PATHS", "router"]
