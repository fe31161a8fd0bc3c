"""People: who is who — companies, users and their logins, departments, and clients.

`companies`, `users`, `departments` are the tenant's own structure; `auth` issues and
checks access and refresh tokens and API tokens; `bootstrap` creates an instance's
first admin (offline); `clients` manages the customers; `identity` is the one
find-or-create of a client from any of its identities (phone with or without the
Brazilian 9th digit, WhatsApp LID, any future id kind), used by every area that meets
a customer.
"""
