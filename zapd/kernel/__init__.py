"""The kernel: what every service receives, and the rules every service applies.

`context` (the `Kernel`: settings, `tx()`, `read()`, the realtime fan-out, passwords,
the login throttle, the outbox wake-up signal, after-commit hooks), `principal` (who
acts: users, API tokens and the offline CLI actor), `audit` (recording who changed
what, in the change's own transaction), `scoping` (tenant-checked lookups), `pagination`
(cursor pages), `visibility` (the one answer to "may this principal see this ticket or
event", in Python and in SQL, used by services and by the realtime stream) and
`throttle`. The kernel imports no service, no realtime module and no daemon part.
"""
