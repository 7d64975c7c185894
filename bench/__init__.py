"""The benchmark harness: ``uv run python -m bench`` (full) or ``--small`` (CI).

It measures the service against a reference endpoint (plain Starlette + asyncpg +
orjson, the limit) and a stock strawberry + SQLAlchemy + aiodataloader server, both
returning the same JSON, on a throwaway PostgreSQL cluster seeded with a fixed data
set, and prints one table of absolute figures and ratios. It lives beside
``gql`` and ``persistence`` rather than in ``tests`` because it asserts nothing: its
figures are for people (the README's "Performance" section), not for a pass/fail.
"""
