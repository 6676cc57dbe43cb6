"""The browser tests' fixtures: per test module a real server (seeded, see server.py) and a Chromium, a
fresh page (context) per test. Module-scoped, not shared by the package: Playwright's sync API runs an
event loop in the test thread while its browser is open, which the async tests of test_routes.py cannot
share.

Debian's `chromium` (/usr/bin/chromium) is driven by the `playwright` package, whose own browser
downloads are never used. Where chromium is missing these tests are skipped with the command that
installs it; in CI (HELSEBRO_CI=1, set by .ci/run, which installs it) they fail instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.external import missing
from tests.portal.browser import CHROMIUM, CHROMIUM_ARGS, HEIGHT, TIMEOUT_MS, WIDTH
from tests.portal.server import PortalServer, Seeded, seed, start_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Chromium and Playwright are there, or the tests are skipped (failed in CI) saying how to get them."""
    if not CHROMIUM.exists():
        missing(f"Debian's chromium is not at {CHROMIUM} (install it: apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing("the playwright package is not installed (pip install -e '.[dev]')")
    return CHROMIUM


@pytest.fixture(scope="module")
def portal(
    chromium: Path, tmp_path_factory: pytest.TempPathFactory, dev_key_file: Path
) -> Iterator[tuple[PortalServer, Seeded]]:
    server = start_server(tmp_path_factory.mktemp("portal"), dev_key_file)
    try:
        yield server, seed(server)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    viewport: ViewportSize = {"width": WIDTH, "height": HEIGHT}
    context = browser.new_context(viewport=viewport, locale="nb-NO", timezone_id="Europe/Oslo")
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, errors  # no script error on any page
