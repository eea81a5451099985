"""The code location: gathers assets, checks, jobs, schedules, sensors and resources.

Built when Dagster loads the code location, not when this module is imported: the dbt
manifest and the Great Expectations suites are read then (and under ``dagster dev`` the dbt
project is parsed first).
"""

import dagster as dg

from orchestration.defs.assets import forum, ingestion, publication
from orchestration.defs.assets.warehouse import warehouse_assets
from orchestration.defs.checks import great_expectations_checks
from orchestration.defs.dbt_project import dbt_resource
from orchestration.defs.jobs import ingest_job, nightly_job, signoff_job
from orchestration.defs.resources import SatudataResource
from orchestration.defs.schedules import nightly_schedule
from orchestration.defs.sensors import email_on_run_failure, landing_sensor, publish_after_signoff


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
