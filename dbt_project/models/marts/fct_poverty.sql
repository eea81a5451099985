with figures as (
    {{ poverty_figures(ref('int_households_classified')) }}
),

latest_units as (
    select distinct unit_code, period from {{ ref('stg_raw__submissions') }} where status = 'accepted'
),

coverage as (
    select
        overlap.region_code,
        periods.period,
        count(*) as expected_units,
        count(latest_units.unit_code) as reporting_units
    from {{ ref('int_regions_units_overlapped') }} as overlap
    cross join (select distinct period from figures) as periods
    left join latest_units
        on overlap.unit_code = latest_units.unit_code
        and periods.period = latest_units.period
    group by all
)

select
    figures.*,
    coalesce(coverage.reporting_units, 0)::integer as reporting_units,
    coalesce(coverage.expected_units, 0)::integer as expected_units,
    {{ approval_columns('approved') }}
from figures
left join coverage
    on figures.region_code = coverage.region_code
    and figures.period = coverage.period
left join {{ ref('int_regions_approved') }} as approved
    on figures.region_code = approved.region_code
    and figures.period = approved.period
