"""Alembic environment of the registry database (a package so that installs ship it)."""
