{{ config(
    materialized='incremental',
    on_schema_change='sync_all_columns',
    pre_hook="{{ delete_outdated_submissions(ref('stg_raw__submissions'), \"status = 'accepted'\") }}"
) }}
-- One row per household of the submission that counts for its unit and period (status
-- 'accepted': decided once, at ingestion, see orchestration/ingest/pipeline.py), with its regency's
-- poverty line (the period's year, or the latest earlier year in the reference), poverty flags
-- and the Foster-Greer-Thorbecke terms. Incremental by submission (macros/incremental.sql).
with households as (
    select
        households.*,
        submissions.unit_code,
        submissions.period,
        cast(left(submissions.period, 4) as integer) as period_year,
        substr(households.village_code, 1, 5) as regency_code
    from {{ ref('stg_raw__households') }} as households
    inner join {{ ref('stg_raw__submissions') }} as submissions
        on households.submission_id = submissions.submission_id
    where submissions.status = 'accepted' and {{ submissions_not_built('households.submission_id') }}
),

lines as (
    select * from {{ ref('stg_reference__poverty_lines') }}
),

line_per_regency_period as (
    select
        periods.regency_code,
        periods.period,
        lines.line_year,
        lines.poverty_line,
        lines.extreme_poverty_line
    from (select distinct regency_code, period, period_year from households) as periods
    inner join lines
        on lines.regency_code = periods.regency_code
        and lines.line_year <= periods.period_year
    qualify row_number() over (
        partition by periods.regency_code, periods.period order by lines.line_year desc
    ) = 1
),

classified as (
    select
        households.submission_id,
        households.household_key,
        households.unit_code,
        households.period,
        households.village_code,
        households.regency_code,
        households.household_size,
        households.expenditure_per_capita,
        line.poverty_line,
        line.line_year as poverty_line_year,
        line.extreme_poverty_line,
        households.expenditure_per_capita < line.poverty_line as is_poor,
        households.expenditure_per_capita < line.extreme_poverty_line as is_extreme_poor,
        greatest(0.0, (line.poverty_line - households.expenditure_per_capita) / line.poverty_line)
            as poverty_gap
    from households
    left join line_per_regency_period as line
        on households.regency_code = line.regency_code
        and households.period = line.period
)

select
    *,
    poverty_gap * poverty_gap as poverty_gap_squared,
    '{{ build_digest() }}' as build_digest
from classified
