"""The wa-js surface the engine uses exists in the pinned bundle, and the fake matches it.

The real bundle is injected into real Chromium on a blank local page (no WhatsApp Web:
WPP never becomes ready, but its modules and functions are defined at injection). When
the pin moves, these tests name every function or event that went away.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from tests.fakes.wajs_page.server import FakeWhatsAppWeb
from tests.zapd.connectors.webjs.harness import require_chromium
from zapd.connectors.webjs import surface
from zapd.connectors.webjs.bundle import locate, pin
from zapd.connectors.webjs.driver import BRIDGE_JS, CHROMIUM_FLAGS

MISSING = """(names) => names.filter((name) => {
  let v = window.WPP;
  for (const part of name.split('.')) v = v == null ? undefined : v[part];
  return typeof v !== 'function';
})"""


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    executable = require_chromium()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=list(CHROMIUM_FLAGS))
        try:
            yield await browser.new_page()
        finally:
            await browser.close()


async def test_pinned_bundle_has_every_name_the_engine_uses(page: Page) -> None:
    bundle = locate()
    assert bundle.version == pin().version
    await page.set_content("<!doctype html><title>blank</title>")
    await page.add_script_tag(content=bundle.source())
    assert await page.evaluate("() => window.WPP.version") == pin().version
    assert await page.evaluate("() => window.WPP.isReady") is False  # no WhatsApp Web here
    assert await page.evaluate(MISSING, list(surface.FUNCTIONS)) == []
    source = bundle.source()
    missing_events = [e for e in surface.EVENTS if f'emit("{e}"' not in source]
    assert missing_events == []


def test_bridge_uses_only_the_declared_surface() -> None:
    js = BRIDGE_JS.read_text(encoding="utf-8")
    called = set(re.findall(r"WPP\.((?:conn|chat|contact)\.\w+)\(", js))
    events = set(re.findall(r"WPP\.on\('([\w.]+)'", js))
    assert called <= set(surface.FUNCTIONS), called - set(surface.FUNCTIONS)
    assert events == set(surface.EVENTS)
    assert called | {"on"} == set(surface.FUNCTIONS)


async def test_fake_page_implements_the_surface_once_wa_js_is_injected(
    page: Page, tmp_path: Path
) -> None:
    fake = FakeWhatsAppWeb()
    url = await fake.start()
    try:
        await page.goto(url)
        assert await page.evaluate("() => window.WPP") is None  # as on web.whatsapp.com
        await page.add_script_tag(content=locate().source())
        await page.wait_for_function("() => window.WPP && window.WPP.isReady")
        assert await page.evaluate(MISSING, list(surface.FUNCTIONS)) == []
        assert await page.evaluate("() => window.__realWPP.version") == pin().version
    finally:
        await fake.stop()
