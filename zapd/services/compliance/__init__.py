"""Compliance and reporting: what the law and the managers read across every area.

`lgpd` answers data-subject requests (access, erasure, retention purge); `exports`
streams conversations, messages, tickets and audit rows as CSV / JSON lines;
`audit_log` is the audit trail's query side; `helpdesk_metrics` computes the helpdesk
figures served under /api/v1/metrics (not Prometheus: that is `zapd.prometheus`).
"""
