"""Tickets: a ticket's life, its timers, and how it is read.

`lifecycle` is the write side (accept, assign, transfer, close, reopen, restore), each
transition checked by `zapd.domain.tickets` and recorded in the audit log and the event
stream; `scheduler` runs the queue timers (flow timeouts, auto-assignment, escalation
of silent assignees); `queries` is the read side: filtered listings, a ticket's
messages, and `ticket_event`, the one realtime payload describing a ticket.
"""
