with units as (
    select unit_code from {{ ref('stg_reference__submitting_units') }}
),

submissions as (
    select * from {{ ref('stg_raw__submissions') }}
),

periods as (
    select distinct period from submissions where status in ('accepted', 'superseded')
),

confirmations as (
    select region_code as unit_code, period, decided_at, decided_by, submission_ids[1] as submission_id
    from {{ ref('stg_raw__signoffs_in_force') }}
    where action = 'confirm'
),

received as (
    select
        submissions.submission_id,
        submissions.unit_code,
        submissions.period,
        submissions.status,
        submissions.submitted_at,
        submissions.households_accepted,
        submissions.rows_rejected,
        case when submissions.status = 'quarantined'
            then submissions.reason_code || ': ' || submissions.reason end as reason,
        confirmations.decided_at as confirmed_at,
        confirmations.decided_by as confirmed_by
    from submissions
    inner join units on submissions.unit_code = units.unit_code
    inner join periods on submissions.period = periods.period
    -- a confirmation vouches for one submission: a later revision is not confirmed
    left join confirmations on submissions.submission_id = confirmations.submission_id
        and submissions.period = confirmations.period
),

missing as (
    select
        null as submission_id,
        units.unit_code,
        periods.period,
        'missing' as status,
        null::timestamptz as submitted_at,
        0 as households_accepted,
        0 as rows_rejected,
        null as reason,
        null::timestamptz as confirmed_at,
        null as confirmed_by
    from units
    cross join periods
    where not exists (
        select 1 from received
        where received.unit_code = units.unit_code and received.period = periods.period
    )
)

select
    unit_code,
    period,
    status,
    submitted_at,
    households_accepted::bigint as households_accepted,
    rows_rejected::bigint as rows_rejected,
    reason::varchar as reason,
    submission_id::varchar as submission_id,
    confirmed_at::timestamptz as confirmed_at,
    confirmed_by::varchar as confirmed_by
from (select * from received union all select * from missing)
