"""Source names become SQL schema names: derive them the way Segment does, and validate them.

Nothing that becomes an SQL identifier reaches SQL without passing `validate_schema_name`.
"""

from __future__ import annotations

import re
import unicodedata

MAX_SCHEMA_LENGTH = 63  # PostgreSQL's NAMEDATALEN - 1

_SAFE_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")

# Names PostgreSQL or SQLite keep for themselves, SQL keywords that would need quoting,
# and the product's own control schema.
RESERVED_SCHEMAS = frozenset(
    {
        "public", "information_schema", "main", "temp", "sqlite_master", "sendgrid_source",
        "all", "and", "any", "array", "as", "asc", "between", "case", "cast", "check",
        "column", "constraint", "create", "cross", "current_date", "current_time",
        "current_user", "default", "delete", "desc", "distinct", "do", "drop", "else", "end",
        "except", "exists", "false", "fetch", "for", "foreign", "from", "grant", "group",
        "having", "in", "index", "inner", "insert", "intersect", "into", "is", "join", "key",
        "left", "like", "limit", "not", "null", "offset", "on", "or", "order", "outer",
        "primary", "references", "right", "schema", "select", "session_user", "set", "table",
        "then", "to", "true", "union", "unique", "update", "user", "using", "values", "view",
        "when", "where", "with",
        # PostgreSQL's other reserved keywords (pg_get_keywords() catcode R and T), which
        # cannot name a schema unquoted.
        "analyse", "analyze", "asymmetric", "authorization", "binary", "both", "collate",
        "collation", "concurrently", "current_catalog", "current_role", "current_schema",
        "current_timestamp", "deferrable", "freeze", "full", "ilike", "initially", "isnull",
        "lateral", "leading", "localtime", "localtimestamp", "natural", "notnull", "only",
        "overlaps", "placing", "returning", "similar", "some", "symmetric", "system_user",
        "tablesample", "trailing", "variadic", "verbose", "window",
        # SQLite keywords that cannot be an identifier (no %fallback ID in its grammar).
        "add", "alter", "autoincrement", "commit", "escape", "if", "nothing", "raise",
        "transaction",
    }
)  # fmt: skip


class InvalidIdentifier(ValueError):
    """The name cannot become a safe SQL identifier; the message says why."""


def schema_name_for(source_name: str) -> str:
    """Derive a schema name from a source name: "SendGrid EU" -> "sendgrid_eu".

    Only ASCII letters, digits, spaces, '-' and '_' are accepted. Look-alike letters from
    other scripts are refused rather than transliterated, so two different-looking names
    never map to one schema by accident.
    """
    name = unicodedata.normalize("NFC", source_name).strip()
    if not name:
        raise InvalidIdentifier("the source name is empty")
    bad = sorted({ch for ch in name if not (ch.isascii() and (ch.isalnum() or ch in " -_"))})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad)
        raise InvalidIdentifier(
            f"the source name may hold only ASCII letters, digits, spaces, '-' and '_' "
            f"(found {shown})"
        )
    schema = re.sub(r"[\s\-]+", "_", name.lower())
    schema = re.sub(r"_+", "_", schema).strip("_")
    return validate_schema_name(schema)


def validate_schema_name(schema: str) -> str:
    if not schema:
        raise InvalidIdentifier("the source name gives an empty schema name")
    if len(schema) > MAX_SCHEMA_LENGTH:
        raise InvalidIdentifier(
            f"the schema name {schema!r} is longer than {MAX_SCHEMA_LENGTH} characters"
        )
    if not _SAFE_IDENTIFIER.match(schema):
        raise InvalidIdentifier(
            f"the schema name {schema!r} must start with a letter or '_' and hold only "
            "lower-case letters, digits and '_'"
        )
    if schema in RESERVED_SCHEMAS or schema.startswith(("pg_", "sqlite_")):
        raise InvalidIdentifier(f"the schema name {schema!r} is reserved; choose another name")
    return schema
