"""The code location: gathers assets, jobs, schedules, sensors and resources."""

import dagster as dg

from .assets import ingestion, publication, warehouse
from .checks.quality_gate import great_expectations_suites
from .dbt_project import DBT_EXECUTABLE, dbt_project
from .jobs import ingest_job, nightly_job
from .resources import SatudataResource, WarehouseDbt
from .schedules import nightly_schedule
from .sensors import landing_sensor, record_run_failure

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([ingestion, warehouse, publication]),
    asset_checks=[great_expectations_suites],
    jobs=[ingest_job, nightly_job],
    schedules=[nightly_schedule],
    sensors=[landing_sensor, record_run_failure],
    resources={
        "satudata": SatudataResource(),
        "dbt": WarehouseDbt(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
    },
)
