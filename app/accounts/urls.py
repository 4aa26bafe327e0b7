"""Safe redirect targets: only local paths."""
from __future__ import annotations

from urllib.parse import urlsplit


def safe_next(target: str | None) -> str | None:
    """`target` when it is a path on this site, else None (refuses `//evil`, `/\\evil`, `javascript:`)."""
    if not target or len(target) > 2048:
        return None
    if any(ord(ch) < 32 or ch == "\\" for ch in target):
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target
