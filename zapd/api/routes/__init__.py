"""HTTP routes, one module per noun; each is a thin layer over `zapd.services`."""
