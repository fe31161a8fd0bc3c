"""People: who is who — companies, users and their logins, departments, and clients.

`companies`, `users`, `departments` are the tenant's own structure; `auth` issues and
checks access and refresh tokens and API tokens; `bootstrap` creates an instance's
first admin (offline); `clients` manages the customers and their identities.
"""
