"""Text folding for matching and slugs: case- and accent-insensitive, Portuguese-friendly."""

from __future__ import annotations

import re
import unicodedata

_NON_SLUG = re.compile(r"[^a-z0-9]+")


def fold(text: str) -> str:
    """Return `text` lower-cased, unaccented, spaces collapsed ("Laboratório" → "laboratorio")."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().split())


def slugify(text: str) -> str:
    """Return a URL-safe slug ("Pós-venda & Suporte" → "pos-venda-suporte")."""
    return _NON_SLUG.sub("-", fold(text)).strip("-")
