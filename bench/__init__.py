"""Load and speed harnesses for zap, outside the programs they measure.

`python -m bench SUBCOMMAND` (what `zapctl bench SUBCOMMAND` runs) measures on a fresh
database (bench.common) and prints one JSON report: `ingest` (pipeline events/s vs
raw-driver ceilings of the same rows), `latency` (inbound -> agent WebSocket),
`fanout` (WebSocket deliveries vs plain websockets), `http` (authenticated GET vs
/healthz), `outbox` (sends/s through a no-op engine vs raw updates), `growth` (ingest
with vs without history) and `startup` (zapctl start-up vs a bare interpreter). Every
figure stands beside a baseline or ceiling measured in the same run: ratios travel,
absolute times do not. `bench.tui` and `bench.cloud` run on their own (`python -m`).
They import zapd; zapd and zapctl never import them.
"""
