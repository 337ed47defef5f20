"""The PostgreSQL tests share the session's throwaway cluster (fixtures `pg_cluster`, `pg_url` in
tests/conftest.py, so the reliability suite's PostgreSQL half uses the same one)."""
