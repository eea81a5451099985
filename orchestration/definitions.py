"""The code location: gathers assets, checks, jobs, schedules, sensors and resources.

Built when Dagster loads the code location, not when this module is imported: the dbt
manifest and the Great Expectations suites are read then (and under ``dagster dev`` the dbt
project is parsed first).
"""

import dagster as dg

from .assets import forum, ingestion, publication
from .assets.warehouse import warehouse_assets
from .checks.quality_gate import great_expectations_checks
from .jobs import ingest_job, nightly_job, signoff_job
from .resources import SatudataResource, dbt_resource
from .schedules import nightly_schedule
from .sensors import email_on_run_failure, landing_sensor, publish_after_signoff


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[
            *dg.with_source_code_references(
                dg.load_assets_from_modules([ingestion, forum, publication])
            ),
            forum.SIGNOFFS,
            forum.SIGNOFFS_IN_FORCE,
            warehouse_assets(),
        ],
        asset_checks=[great_expectations_checks()],
        jobs=[ingest_job, nightly_job, signoff_job],
        schedules=[nightly_schedule],
        sensors=[landing_sensor, email_on_run_failure, publish_after_signoff],
        resources={"satudata": SatudataResource(), "dbt": dbt_resource()},
    )
