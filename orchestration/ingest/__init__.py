"""Submission ingestion: pure Python + DuckDB, no Dagster imports."""
