"""The assets of the flow, one module per stage: ingestion, the forum's tables, the dbt
warehouse, the publication."""
