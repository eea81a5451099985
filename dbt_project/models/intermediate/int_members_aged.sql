{{ config(
    materialized='incremental',
    on_schema_change='sync_all_columns',
    pre_hook="{{ delete_outdated_submissions(ref('int_households_classified'), 'true', [var('working_age')]) }}"
) }}
-- One row per member of the latest submissions, with age in full years at the period's last
-- day, labour status and the household's poverty status. Incremental by submission
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
        members.employment_status,
        last_day(cast(households.period || '-01' as date)) as period_end
    from members
    inner join households
        on members.submission_id = households.submission_id
        and members.household_key = households.household_key
)

select
    * exclude (period_end),
    year(period_end) - year(birth_date)
        - case when strftime(period_end, '%m%d') < strftime(birth_date, '%m%d') then 1 else 0 end
        as age_years,
    age_years >= {{ var('working_age') }} as is_working_age,
    employment_status = 'bekerja' as is_employed,
    employment_status = 'menganggur' as is_unemployed,
    '{{ build_digest([var('working_age')]) }}' as build_digest
from joined
