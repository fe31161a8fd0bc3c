"""The `cloud` engine: Meta's WhatsApp Cloud API.

- `webhook`: signature check (X-Hub-Signature-256) and the tolerant pydantic models of
  Meta's webhook bodies, turned into engine-neutral events (`parse`).
- `graph`: the Graph API client (httpx) and the mapping of Graph errors to retryable or
  permanent failures.
- `payloads`: outbound messages as Graph `/messages` bodies (text, media, quoted
  replies, reply buttons, lists, templates) and the limits Meta puts on them.
- `connector`: the session's connector (start checks the token, send goes through
  Graph with per-recipient pacing; a send in doubt after a crash is held until Meta's
  status webhook identifies it, then re-sent: at-least-once, see its docstring).

What the Cloud API cannot do: show a customer's typing (Meta sends no typing or
presence webhook; only WhatsApp Web sees it), or link a number by QR (it is linked in
Meta's dashboard; the conformance suite skips the QR checks for it).

Nothing here imports a service: the webhook route and the cloud service glue these
to the inbound pipeline and the outbox.
"""
