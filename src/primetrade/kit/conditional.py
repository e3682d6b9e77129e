"""ETags from row versions, and the If-Match / If-None-Match headers that use them."""

from __future__ import annotations

import re

_TAG = re.compile(r'(?:W/)?"v(\d{1,18})"')
_ENTITY_TAG = re.compile(r'(?:W/)?("[^"]*")')


def etag(version: int) -> str:
    return f'"v{version}"'


def versions_in(header: str | None) -> frozenset[int] | None:
    """The versions an If-Match/If-None-Match header names; None when absent or `*`.

    A header that names no version of ours gives an empty set, which nothing matches.
    """
    if header is None or header.strip() == "*":
        return None
    return frozenset(int(v) for v in _TAG.findall(header))


def none_match(header: str | None, tag: str) -> bool:
    """True when If-None-Match names `tag` (or is `*`), compared weakly as RFC 9110 says."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    opaque = tag.removeprefix("W/")
    return any(match.group(1) == opaque for match in _ENTITY_TAG.finditer(header))
