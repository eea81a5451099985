"""Checks that gate publication beyond dbt's tests: the Great Expectations suites, validated
in SQL on the build file (expectations.py)."""
