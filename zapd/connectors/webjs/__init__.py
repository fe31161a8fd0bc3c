"""The webjs engine: WhatsApp Web in Chromium (Playwright), wa-js injected at a pinned hash.

`driver.WebjsDriver` owns the Playwright driver and every browser process;
`connector.WebjsConnector` is one session; `bundle` finds and verifies the pinned wa-js
(light: zapctl's doctor imports it without Playwright). See each module's invariants.
"""
