"""CSV cells a spreadsheet opens safely. A floor of its own at the bottom: the backer list
(settlement) and the shipping list (fulfillment) sit side by side and both need it."""
from __future__ import annotations

#: A cell a spreadsheet would read as a formula starts with one of these (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """A CSV cell that no spreadsheet runs as a formula: a leading = + - @ (or tab, CR) is quoted."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
