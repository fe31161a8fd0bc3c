"""Conversations: what arrives from and goes to a customer, turned into tickets and messages.

`inbound` stores every engine event durably before acknowledging it, then processes it
idempotently (dedupe on the WhatsApp message id): finds the client, runs the greeting
flow, opens or reopens the ticket, applies acks. `messages` is the agent's side: a reply
or internal note on a ticket, or a message to a number, always through the outbox.
"""
