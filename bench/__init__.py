"""Load and speed harnesses for zap, outside the programs they measure.

Each module runs with `python -m bench.<name>` and reports same-run ratios (a figure
beside its baseline measured in the same run), never absolute times:
`bench.daemon` (HTTP requests vs /healthz, inbound pipeline vs raw inserts) and
`bench.realtime` (WebSocket fan-out). They import zapd; zapd never imports them.
"""
