"""What the browser tests share: Chromium's arguments, the viewport, and the steps a citizen takes
(open the portal, sign in, go to a view) with the screenshots checked as the eye would."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tests.portal.png import SIGNATURE, Image, png_size, read_png
from tests.portal.server import PortalServer

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTH, HEIGHT = 1280, 900
BRAND = (10, 59, 92)  # --brand: the charts' first line and its points
PREGNANCY_PANEL = "Mitt helsekort for gravide"
TIMEOUT_MS = 15_000


def open_portal(page: Page, server: PortalServer) -> None:
    page.goto(f"{server.url}/portal")
    page.wait_for_selector("body[data-ready='true']")


def sign_in(page: Page, name: str) -> None:
    page.get_by_label(name).check()
    page.get_by_role("button", name="Logg inn").click()
    page.wait_for_selector(f"#session-name:text-is('{name}')")


def go_to(page: Page, menu_entry: str) -> None:
    """Clicks a menu entry and waits until its view (whose heading is the entry's text) has loaded."""
    page.get_by_role("navigation", name="Hovedmeny").get_by_role("link", name=menu_entry).click()
    page.get_by_role("heading", level=1, name=menu_entry).wait_for()
    page.wait_for_selector("main [aria-busy]", state="detached")


def screenshot(page: Page, path: Path) -> bytes:
    data = page.screenshot(path=path, full_page=True)
    assert data.startswith(SIGNATURE)
    width, height = png_size(data)
    assert width == WIDTH
    assert height >= HEIGHT
    return data


def element_shot(locator: Locator, path: Path) -> Image:
    """The element's own screenshot, decoded; its size is the element's."""
    data = locator.screenshot(path=path)
    image = read_png(data)
    box = locator.bounding_box()
    assert box is not None
    # Whole pixels: a box with fractional edges (a card below text of fractional line height) is
    # captured by the pixels it touches, up to one more at each edge.
    assert abs(image.width - box["width"]) <= 2
    assert abs(image.height - box["height"]) <= 2
    assert len(image.colours()) > 2  # text on a background, not an empty box
    return image
