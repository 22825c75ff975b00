"""The throwaway PostgreSQL of tests/postgres_fixtures.py: a real server, a database per test."""

from __future__ import annotations

import psycopg
import pytest

# Imported inside the tests, not here, so pytest loads the module as a plugin itself (and
# rewrites its asserts) before anything imports it.
pytest_plugins = ["tests.postgres_fixtures"]


def test_a_fresh_database_stores_and_reads_a_row(fresh_postgres_url: str) -> None:
    with psycopg.connect(fresh_postgres_url) as conn:
        conn.execute("CREATE TABLE evidence (id serial PRIMARY KEY, verdict text NOT NULL)")
        conn.execute("INSERT INTO evidence (verdict) VALUES (%s)", ("promote",))
        conn.commit()
    with psycopg.connect(fresh_postgres_url) as conn:
        assert conn.execute("SELECT id, verdict FROM evidence").fetchall() == [(1, "promote")]


def test_fresh_databases_are_distinct(fresh_postgres_url: str, postgres_url: str) -> None:
    from tests.postgres_fixtures import fresh_database

    with fresh_database(postgres_url) as other:
        assert other != fresh_postgres_url
        with psycopg.connect(fresh_postgres_url) as conn:
            conn.execute("CREATE TABLE only_here (x int)")
            conn.commit()
        for url in (other, postgres_url):
            with psycopg.connect(url) as conn:
                tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                assert tables.fetchall() == []
    with psycopg.connect(postgres_url) as conn:
        names = conn.execute("SELECT datname FROM pg_database").fetchall()
    assert (other.rsplit("/", 1)[1],) not in names  # dropped on leaving


def test_the_server_is_gone_after_the_context() -> None:
    from tests.postgres_fixtures import INSTALL_HINT, postgres_binaries, running_postgres

    if postgres_binaries() is None:
        pytest.skip(f"PostgreSQL is not installed: {INSTALL_HINT}")
    with running_postgres() as url, psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return
    raise AssertionError(f"{url} still accepts connections after running_postgres()")
