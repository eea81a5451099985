"""satudata: the Satu Data Kemiskinan warehouse (Dagster code location)."""
