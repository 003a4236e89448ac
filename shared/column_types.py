"""The column types every table shares: JSON (JSONB on PostgreSQL) and a UTC timestamp."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


class _UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp with time zone that reads back aware on SQLite too (stored there without
    its offset), so the API's date-times always carry one, as RFC 3339 requires."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


UTCDateTime = _UTCDateTime()
