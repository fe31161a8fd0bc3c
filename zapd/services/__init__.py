"""Application logic, one package per area; every service receives the kernel.

Services take a `zapd.kernel.context.Kernel` (or an open `AsyncSession` plus the
principal / actor) and never the daemon; the long-lived workers among them (inbound
pipeline, session manager, outbox worker, scheduler) are built by `zapd.daemon`, which
hands each what it needs explicitly.

The areas, from the top of the import order to the bottom (an area imports only the
areas below it; areas on one line never import each other; checked by import-linter,
see pyproject.toml):

    conversations | compliance      what happens to a conversation / what the law and
                                    the reports read across every area
    tickets                         a ticket's life, its queue timers, its read model
    delivery | sessions             getting messages out (outbox, acks, media) /
                                    the WhatsApp numbers and their running engines
    people                          companies, users, logins, clients and their identities,
                                    departments
    catalog                         categories, tags, quick replies

Why this order: a conversation (inbound message, agent reply) opens and moves tickets,
enqueues deliveries, reads the session and finds the client, so it sits on top; the
compliance side (LGPD, exports, audit queries, helpdesk metrics) only reads and erases
across areas and nothing calls it back. Tickets enqueue system messages (delivery) and
tag clients (catalog). Delivery and sessions are independent: the outbox worker reaches
a running engine only through the `connector_of` callable the daemon hands it. People
own who is who and use the catalog's tags; the catalog is plain reference data that
depends on nothing else.
"""
