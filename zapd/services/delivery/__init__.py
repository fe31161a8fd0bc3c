"""Delivery: getting a message to the customer and knowing it arrived.

`outbox` is the only way anything reaches a customer (idempotency key, one row per
message) plus the admin side (list, retry, drop); `outbox_worker` claims due rows and
sends them through the running engine its `connector_of` callable returns (rate limit
and lane per session, retry with backoff, dead letter); `acks` moves a message's
delivery status forward only; `media` stores and serves attachments.
"""
