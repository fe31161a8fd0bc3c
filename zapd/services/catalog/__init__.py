"""Catalog: a company's reference data — ticket categories, tags, agents' quick replies.

Plain tenant-scoped CRUD with audit and realtime events; depends on no other area.
"""
