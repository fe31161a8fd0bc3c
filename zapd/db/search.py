"""Accent- and case-insensitive name search on an index (`client_terms`), not a scan.

Every word of a client's `name` and `profile_name`, folded (`shared.text.fold`: no case,
no accents) and cut at non-alphanumerics, is a row of `client_terms` indexed on
`(company_id, term)`. A query word matches a client when it is the prefix of one of its
terms ("lucia" and "luc" find "Lúcia Ferreira", and so does "ferr"); every word of the
query must match. The prefix is read as an index range (`term >= w AND term < next(w)`),
which PostgreSQL and SQLite both serve from the B-tree.

Invariants: the terms follow the names on every ORM flush (the listeners below, which
this module registers on import; `zapd.db.engine` imports it); a client with no name has
no terms. Bulk `UPDATE` statements on the two name columns bypass the listeners and must
call `replace_terms` themselves.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, event, insert, select
from sqlalchemy import inspect as sa_inspect

from shared.text import fold
from zapd.db.models import Client, ClientTerm

MAX_TERM = 64  # longer words are cut (the column's width)
MAX_QUERY_WORDS = 8
_ALNUM = "0123456789abcdefghijklmnopqrstuvwxyz"
_WORD = re.compile(r"[0-9a-z]+")


def terms_of(*names: str | None) -> set[str]:
    """Return the folded search terms of `names` (words of [0-9a-z], cut at 64)."""
    out: set[str] = set()
    for name in names:
        if name:
            out.update(w[:MAX_TERM] for w in _WORD.findall(fold(name)))
    return out


def query_words(q: str) -> list[str]:
    """Return the folded words of a search text (at most 8)."""
    return [w[:MAX_TERM] for w in _WORD.findall(fold(q))][:MAX_QUERY_WORDS]


def _successor(prefix: str) -> str | None:
    """Return the smallest [0-9a-z] string above every string starting with `prefix`."""
    while prefix:
        last = prefix[-1]
        i = _ALNUM.find(last)
        if 0 <= i < len(_ALNUM) - 1:
            return prefix[:-1] + _ALNUM[i + 1]
        prefix = prefix[:-1]
    return None


def _prefix(word: str) -> ColumnElement[bool]:
    upper = _successor(word)
    cond = ClientTerm.term >= word
    return and_(cond, ClientTerm.term < upper) if upper is not None else cond


def name_matches(
    client_id: Any, words: list[str], company_id: uuid.UUID | None
) -> ColumnElement[bool]:
    """Return the condition "the client `client_id` has a term starting with each word"."""
    conds: list[ColumnElement[bool]] = []
    for word in words:
        sub = select(ClientTerm.client_id).where(_prefix(word))
        if company_id is not None:
            sub = sub.where(ClientTerm.company_id == company_id)
        conds.append(client_id.in_(sub))
    return and_(*conds)


def replace_terms(
    conn: Connection,
    client_id: uuid.UUID,
    company_id: uuid.UUID,
    name: str | None,
    profile_name: str | None,
) -> None:
    """Rewrite a client's terms from its names (inside the caller's transaction)."""
    conn.execute(delete(ClientTerm).where(ClientTerm.client_id == client_id))
    rows = [
        {"client_id": client_id, "company_id": company_id, "term": t}
        for t in sorted(terms_of(name, profile_name))
    ]
    if rows:
        conn.execute(insert(ClientTerm), rows)


@event.listens_for(Client, "after_insert")
def _client_inserted(_mapper: Any, conn: Connection, row: Client) -> None:
    if row.name or row.profile_name:
        replace_terms(conn, row.id, row.company_id, row.name, row.profile_name)


@event.listens_for(Client, "after_update")
def _client_updated(_mapper: Any, conn: Connection, row: Client) -> None:
    state = sa_inspect(row)
    if state.attrs.name.history.has_changes() or state.attrs.profile_name.history.has_changes():
        replace_terms(conn, row.id, row.company_id, row.name, row.profile_name)
