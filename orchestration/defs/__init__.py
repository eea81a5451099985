"""Everything Dagster: the code location (definitions.py), assets, checks, jobs, schedules,
sensors, resources, the dbt project, run storage and alerts. The stages it runs live beside it
(ingest/, checks/, publication/, forum/) and never import it."""
