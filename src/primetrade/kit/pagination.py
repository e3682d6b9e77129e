"""Keyset (cursor) pagination: page 500 costs what page 1 costs.

A cursor carries the sort name and the last row's sort value and id. It is signed, so a
client can pass it back but cannot forge or edit one (a tampered cursor is a 400).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, and_, literal, or_, tuple_
from sqlalchemy.sql.elements import UnaryExpression

from primetrade.kit.errors import AppError

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of results and the cursor of the next one (null on the last page)."""

    items: list[T]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")
    total: int | None = Field(None, description="All matches; only with `include_total=true`.")


class InvalidCursor(AppError):
    status, code, title = 400, "invalid_cursor", "Invalid cursor"


def _dump(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass(frozen=True, slots=True)
class SortKey:
    """How to order by one attribute and how its values travel inside a cursor."""

    attr: str
    column: ColumnElement[Any]
    descending: bool = False
    nullable: bool = False
    load: Callable[[Any], Any] = lambda value: value

    @property
    def name(self) -> str:
        return f"-{self.attr}" if self.descending else self.attr

    def value_of(self, row: Any) -> Any:
        """The row's sort value in cursor form (JSON-ready)."""
        return _dump(getattr(row, self.attr))

    def with_direction(self, descending: bool) -> SortKey:
        return replace(self, descending=descending)

    def order_by(self, id_column: ColumnElement[Any]) -> list[UnaryExpression[Any]]:
        # Ties broken by id in the same direction, so the order matches a plain
        # (owner_id, column, id) index read forwards or backwards. NULLs always come last, in
        # both directions, so both engines agree; only nullable columns say so explicitly,
        # because `DESC NULLS LAST` on a NOT NULL column would stop PostgreSQL reading the
        # index backwards and make it sort every row instead.
        if self.descending:
            first, second = self.column.desc(), id_column.desc()
        else:
            first, second = self.column.asc(), id_column.asc()
        return [first.nulls_last() if self.nullable else first, second]

    def after(
        self, id_column: ColumnElement[Any], value: Any, last_id: uuid.UUID
    ) -> ColumnElement[bool]:
        """Rows strictly after (value, last_id) in this order.

        A row-value comparison, `(column, id) > (value, last_id)`, which both engines turn
        into an index range: the page starts where the cursor points rather than after
        skipping every earlier row.
        """
        id_beyond = id_column < last_id if self.descending else id_column > last_id
        if value is None:
            # Only NULLs come after a NULL (they are last in both directions).
            return and_(self.column.is_(None), id_beyond)
        # Typed literals, so the column types (UTC datetimes, priority ranks) convert them.
        position = tuple_(
            literal(value, type_=self.column.type), literal(last_id, type_=id_column.type)
        )
        row = tuple_(self.column, id_column)
        beyond = row < position if self.descending else row > position
        return or_(beyond, self.column.is_(None)) if self.nullable else beyond


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"cursor:" + secret.encode()).digest()

    def encode(self, sort: str, value: Any, last_id: uuid.UUID) -> str:
        payload = orjson.dumps({"s": sort, "v": value, "i": str(last_id)})
        signature = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(signature + payload).rstrip(b"=").decode()

    def decode(self, cursor: str, sort: str) -> tuple[Any, uuid.UUID]:
        """(last value, last id) for a cursor made for `sort`; InvalidCursor otherwise."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            signature, payload = raw[:16], raw[16:]
            expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
            if not hmac.compare_digest(signature, expected):
                raise ValueError("bad signature")
            data = orjson.loads(payload)
            last_id = uuid.UUID(data["i"])
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            raise InvalidCursor(
                "The cursor is not valid; start again from the first page."
            ) from exc
        if data.get("s") != sort:
            raise InvalidCursor("The cursor belongs to another sort order or query.")
        return data.get("v"), last_id

    def decode_for(
        self, cursor: str | None, key: SortKey, scope: str
    ) -> tuple[Any, uuid.UUID] | None:
        """The position after which the next page starts, or None for the first page."""
        if cursor is None:
            return None
        value, last_id = self.decode(cursor, scope)
        try:
            return (None if value is None else key.load(value)), last_id
        except (ValueError, TypeError) as exc:
            raise InvalidCursor(
                "The cursor is not valid; start again from the first page."
            ) from exc

    def next_for(self, rows: list[tuple[Any, Any]], scope: str, limit: int) -> str | None:
        """The cursor after row `limit` of (row, sort value) pairs; None on the last page."""
        if len(rows) <= limit:
            return None
        row, value = rows[limit - 1]
        return self.encode(scope, value, row.id)


def load_datetime(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))
