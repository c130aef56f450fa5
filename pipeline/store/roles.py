"""The PostgreSQL reader role: SELECT on the v1 views and the token check, nothing else.

``newsagg db grant-reader`` (pipeline.serve.tokens.grant_reader) checks the names; the SQL is here.
"""

from __future__ import annotations

from sqlalchemy import text

from pipeline.errors import ConfigError
from pipeline.store.core import Store
from pipeline.store.schema import READ_VIEWS


def grant_reader_role(store: Store, role: str, login: bool = False) -> list[str]:
    """Create or update ``role`` (a checked identifier) so that it can SELECT the v1 views,
    call ``newsagg_v1_token_name`` and nothing else here. Returns warnings about what this
    cannot fix on its own."""
    ident = f'"{role}"'
    warnings: list[str] = []
    with store.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(4242003)"))  # one grant at a time
        row = conn.execute(
            text(
                "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication, "
                "EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid) AS member "
                "FROM pg_roles r WHERE rolname = :role"
            ),
            {"role": role},
        ).first()
        if row is None:
            conn.execute(text(f"CREATE ROLE {ident} {'LOGIN' if login else 'NOLOGIN'}"))
        else:
            if any(row[:5]):
                raise ConfigError(
                    f"role {role!r} is privileged (superuser, createrole, "
                    "createdb, bypassrls or replication); pick another name"
                )
            if row.member:
                raise ConfigError(
                    f"role {role!r} is a member of other roles and would read "
                    "with their rights; pick another name"
                )
            conn.execute(text(f"ALTER ROLE {ident} {'LOGIN' if login else 'NOLOGIN'}"))
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        database = conn.execute(text("SELECT current_database()")).scalar_one()
        schema_ident = '"' + schema.replace('"', '""') + '"'
        database_ident = '"' + database.replace('"', '""') + '"'
        conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema_ident} FROM {ident}"))
        conn.execute(text(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema_ident} FROM {ident}"))
        conn.execute(text(f"REVOKE CREATE ON SCHEMA {schema_ident} FROM {ident}"))
        conn.execute(text(f"GRANT USAGE ON SCHEMA {schema_ident} TO {ident}"))
        conn.execute(text(f"GRANT CONNECT ON DATABASE {database_ident} TO {ident}"))
        for view in READ_VIEWS:
            conn.execute(text(f"GRANT SELECT ON {schema_ident}.{view} TO {ident}"))
        # checks a token's hash for `newsagg serve`; reads nothing else (migration 0004)
        conn.execute(text(f"GRANT EXECUTE ON FUNCTION {schema_ident}.newsagg_v1_token_name(text) TO {ident}"))
        if conn.execute(
            text("SELECT has_schema_privilege(:role, current_schema(), 'CREATE')"), {"role": role}
        ).scalar_one():
            warnings.append(
                f"every role may create tables in schema {schema} (the PostgreSQL "
                f"< 15 default): run REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC"
            )
    return warnings
