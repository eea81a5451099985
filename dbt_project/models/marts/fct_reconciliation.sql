with register as (
    select * from {{ ref('fct_poverty') }} where level in ('regency', 'province')
),

bps as (
    select * from {{ ref('stg_reference__bps_poverty_stats') }} where poverty_rate is not null
),

matched as (
    select
        register.region_code,
        register.level,
        register.period,
        register.poverty_rate as register_poverty_rate,
        register.reporting_units,
        register.expected_units,
        bps.poverty_rate as bps_poverty_rate,
        bps.stats_year as bps_year,
        bps.stats_period as bps_period,
        bps.source as bps_source
    from register
    left join bps
        on register.region_code = bps.region_code
        and bps.stats_year <= cast(left(register.period, 4) as integer)
    -- the period's own year when BPS has it, else the latest earlier; March (the
    -- regency survey month) before September within a year
    qualify row_number() over (
        partition by register.region_code, register.period
        order by bps.stats_year desc nulls last, (bps.stats_period = 'Maret') desc
    ) = 1
)

select
    region_code,
    level,
    period,
    register_poverty_rate::double as register_poverty_rate,
    bps_poverty_rate::double as bps_poverty_rate,
    (register_poverty_rate - bps_poverty_rate)::double as difference_points,
    bps_year::integer as bps_year,
    bps_period::varchar as bps_period,
    bps_source::varchar as bps_source,
    reporting_units::integer as reporting_units,
    expected_units::integer as expected_units
from matched
