"""One Playwright driver for every webjs session, and the Chromium processes it launches.

Invariants:
- One Chromium process per session (a persistent profile cannot share a browser), all
  launched through one Playwright driver started on first use and stopped with zapd.
- Every browser is known by pid (found by its exact `--user-data-dir`); closing one
  waits for its whole process tree to end, killing what does not. Before a launch, a
  browser left on the profile by a crashed zapd is killed and `Singleton*` locks whose
  owner is dead are removed (never a lock of a live process).
- At most `webjs_start_concurrency` browsers start at once (staggered restore at boot).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import BrowserContext, Playwright, async_playwright
from prometheus_client import CollectorRegistry, Counter

from zapd.config import ZapdSettings
from zapd.connectors.webjs import procs
from zapd.connectors.webjs.bundle import Bundle, locate

log = logging.getLogger("zapd.webjs")

# A headless server: no GPU, no background traffic, no updates, small caches.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--mute-audio",
    "--disk-cache-size=16777216",
    "--renderer-process-limit=2",
)
CLOSE_TIMEOUT = 10.0
LEAVE_TIMEOUT = 3.0
BRIDGE_JS = Path(__file__).with_name("bridge.js")


class EngineUnavailable(Exception):
    """The webjs engine cannot run here (no Chromium, no verified wa-js)."""


def chromium_path(explicit: Path | None) -> str:
    """Return the browser binary: ZAP_CHROMIUM, else /usr/bin/chromium, else PATH."""
    if explicit is not None:
        if os.access(explicit, os.X_OK):
            return str(explicit)
        raise EngineUnavailable(f"ZAP_CHROMIUM={explicit} is not an executable file")
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise EngineUnavailable("no Chromium found (apt install chromium, or set ZAP_CHROMIUM)")


@dataclass
class Browser:
    """One launched Chromium: its Playwright context and its main process id."""

    session_id: uuid.UUID
    profile: Path
    context: BrowserContext
    pid: int | None


class WebjsDriver:
    """The daemon's Playwright driver and the browsers of all webjs sessions."""

    def __init__(self, settings: ZapdSettings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self._pw: Playwright | None = None
        self._pw_lock = asyncio.Lock()
        self._starting = asyncio.Semaphore(settings.webjs_start_concurrency)
        self.browsers: dict[uuid.UUID, Browser] = {}
        self._bundle: Bundle | None = None
        self.recycles = Counter(
            "zapd_webjs_browser_recycles",
            "webjs browsers recycled with the same profile (memory guard)",
            registry=registry,
        )
        self.restarts = Counter(
            "zapd_webjs_browser_restarts",
            "webjs browsers restarted after a crash, a dead page or a lost connection",
            ["reason"],
            registry=registry,
        )

    # ------------------------------------------------------------------ resources

    def check(self) -> tuple[str, Bundle]:
        """Return the browser path and the verified bundle, or raise EngineUnavailable."""
        browser = chromium_path(self.settings.chromium)
        if self._bundle is None:
            try:
                self._bundle = locate(self.settings.wajs_path)
            except Exception as exc:
                raise EngineUnavailable(str(exc)) from None
        return browser, self._bundle

    def bundle_source(self) -> str:
        """Return the wa-js script text (verified at check())."""
        _, bundle = self.check()
        return bundle.source()

    def bridge_source(self) -> str:
        """Return zap's bridge script."""
        return BRIDGE_JS.read_text(encoding="utf-8")

    def session_dir(self, session_id: uuid.UUID) -> Path:
        """Return `<state>/sessions/<id>` (profile, cursor, spooled media)."""
        return self.settings.state_dir / "sessions" / str(session_id)

    def profile_dir(self, session_id: uuid.UUID) -> Path:
        """Return the session's Chromium profile directory."""
        return self.session_dir(session_id) / "profile"

    async def _playwright(self) -> Playwright:
        async with self._pw_lock:
            if self._pw is None:
                self._pw = await async_playwright().start()
            return self._pw

    # ------------------------------------------------------------------ browsers

    @property
    def starting(self) -> asyncio.Semaphore:
        """The start slots: hold one from launch until WhatsApp Web is loaded and injected."""
        return self._starting

    async def launch(self, session_id: uuid.UUID) -> Browser:
        """Start the session's browser on its profile (the caller holds a start slot)."""
        executable, _ = self.check()
        profile = self.profile_dir(session_id)
        profile.mkdir(parents=True, exist_ok=True, mode=0o700)
        await asyncio.to_thread(self._reclaim, profile)
        pw = await self._playwright()
        context = await pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=executable,
            headless=self.settings.webjs_headless,
            args=list(CHROMIUM_FLAGS),
            user_agent=self.settings.webjs_user_agent,
            bypass_csp=True,
            viewport={"width": 1024, "height": 720},
            handle_sigint=False,
            handle_sigterm=False,
            handle_sighup=False,
        )
        found = await asyncio.to_thread(procs.browsers_of, profile)
        browser = Browser(session_id, profile, context, found[0] if found else None)
        if browser.pid is None:
            log.warning("webjs %s: browser started but its pid was not found", session_id)
        self.browsers[session_id] = browser
        log.info("webjs %s: browser pid %s on %s", session_id, browser.pid, profile)
        return browser

    def _reclaim(self, profile: Path) -> None:
        for pid in procs.browsers_of(profile):
            log.warning("killing browser pid %s left on %s by an earlier run", pid, profile)
            procs.kill_tree(pid)
        if procs.clear_stale_locks(profile):
            log.info("removed stale Singleton lock of %s", profile)

    async def close(self, browser: Browser) -> None:
        """Close a browser and make sure its whole process tree is gone."""
        if self.browsers.get(browser.session_id) is browser:
            del self.browsers[browser.session_id]
        try:
            # Leave WhatsApp Web first, so it closes its IndexedDB before the browser exits.
            for page in list(browser.context.pages):
                await asyncio.wait_for(page.goto("about:blank"), LEAVE_TIMEOUT)
        except Exception as exc:
            log.info("webjs %s: leaving the page: %s", browser.session_id, exc)
        try:
            await asyncio.wait_for(browser.context.close(), CLOSE_TIMEOUT)
        except Exception as exc:
            log.info("webjs %s: closing the context: %s", browser.session_id, exc)
        if browser.pid is not None:
            await asyncio.to_thread(procs.kill_tree, browser.pid)
        await asyncio.to_thread(self._reclaim, browser.profile)

    async def shutdown(self) -> None:
        """Close every browser and the driver (daemon stop)."""
        for browser in list(self.browsers.values()):
            await self.close(browser)
        async with self._pw_lock:
            if self._pw is not None:
                try:
                    await self._pw.stop()
                except Exception as exc:
                    log.info("stopping Playwright: %s", exc)
                self._pw = None
