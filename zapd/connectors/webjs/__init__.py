"""The webjs engine: WhatsApp Web in Chromium (Playwright), wa-js injected at a pinned hash.

`WebjsDriver` owns the Playwright driver and every browser process; `WebjsConnector`
is one session. See driver.py and connector.py for their invariants.
"""

from zapd.connectors.webjs.connector import WebjsConnector
from zapd.connectors.webjs.driver import EngineUnavailable, WebjsDriver

__all__ = ["EngineUnavailable", "WebjsConnector", "WebjsDriver"]
