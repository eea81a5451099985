{{ config(
    materialized='incremental',
    on_schema_change='sync_all_columns',
    pre_hook="{{ delete_outdated_submissions(ref('int_households_classified'), 'true', [poverty_rules_sql()]) }}"
) }}
-- One row per member of the latest submissions, with age in full years at the period's last
-- day and working age (both decided once, at ingestion, by the submission contract), labour
-- status and the household's poverty status. Incremental by submission
-- (macros/incremental.sql): the households model holds exactly the latest submissions.
with members as (
    select * from {{ ref('stg_raw__members') }}
    where {{ submissions_not_built('submission_id') }}
),

households as (
    select * from {{ ref('int_households_classified') }}
),

joined as (
    select
        members.submission_id,
        members.person_key,
        members.household_key,
        households.unit_code,
        households.period,
        households.village_code,
        households.is_poor,
        members.sex,
        members.nik_sex,
        members.birth_date,
        members.age_years,
        members.is_working_age,
        members.employment_status
    from members
    inner join households
        on members.submission_id = households.submission_id
        and members.household_key = households.household_key
)

select
    *,
    employment_status = 'bekerja' as is_employed,
    employment_status = 'menganggur' as is_unemployed,
    '{{ build_digest([poverty_rules_sql()]) }}' as build_digest  -- is_poor follows the rules
from joined
