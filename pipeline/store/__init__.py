"""The store: SQLAlchemy Core tables, Alembic migrations and the only code that writes SQL."""
