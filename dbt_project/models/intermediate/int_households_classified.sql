{{ config(
    materialized='incremental',
    on_schema_change='sync_all_columns',
    pre_hook="{{ delete_outdated_submissions(
        ref('stg_raw__submissions'), \"status = 'accepted'\", [poverty_rules_sql()]
    ) }}"
) }}
-- One row per household of the submission that counts for its unit and period (status
-- 'accepted': decided once, at ingestion, see orchestration/ingest/load.py), with its regency's
-- poverty line, poverty flags and the Foster-Greer-Thorbecke terms (macros/poverty.sql).
-- Incremental by submission (macros/incremental.sql); the digest covers the rules' SQL too.
with households as (
    {{ households_of_submissions(
        ref('stg_raw__households'),
        ref('stg_raw__submissions'),
        "submissions.status = 'accepted' and " ~ submissions_not_built('households.submission_id'),
    ) }}
),

{{ classify_households('households', ref('stg_reference__poverty_lines')) }}

select
    *,
    '{{ build_digest([poverty_rules_sql()]) }}' as build_digest
from classified
