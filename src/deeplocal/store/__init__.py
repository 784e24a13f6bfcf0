"""Shared state: one SQLAlchemy engine (SQLite by default, PostgreSQL by URL), tables, migrations."""
