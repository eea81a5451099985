with units as (
    select unit_code from {{ ref('stg_reference__submitting_units') }}
),

submissions as (
    select * from {{ ref('stg_raw__submissions') }}
),

periods as (
    select distinct period from submissions where status in ('accepted', 'superseded')
),

received as (
    select
        submissions.unit_code,
        submissions.period,
        submissions.status,
        submissions.submitted_at,
        submissions.households_accepted,
        submissions.rows_rejected,
        case when submissions.status = 'quarantined'
            then submissions.reason_code || ': ' || submissions.reason end as reason
    from submissions
    inner join units on submissions.unit_code = units.unit_code
    inner join periods on submissions.period = periods.period
),

missing as (
    select
        units.unit_code,
        periods.period,
        'missing' as status,
        null::timestamptz as submitted_at,
        0 as households_accepted,
        0 as rows_rejected,
        null as reason
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
    reason::varchar as reason
from (select * from received union all select * from missing)
