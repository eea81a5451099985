with households as (
    select * from {{ ref('int_households_classified') }}
),

bridge as (
    select * from {{ ref('int_villages_rolled_up') }}
),

rolled as (
    select
        bridge.region_code,
        bridge.level,
        households.period,
        count(*) as households,
        sum(households.household_size) as population,
        -- one regency line below province level; none for the province as a whole
        case when bridge.level <> 'province' then max(households.poverty_line) end as poverty_line,
        case when bridge.level <> 'province' then max(households.poverty_line_year) end
            as poverty_line_year,
        sum(case when households.is_poor then households.household_size else 0 end) as poor_population,
        sum(households.household_size * households.poverty_gap) as weighted_gap,
        sum(households.household_size * households.poverty_gap_squared) as weighted_gap_squared,
        sum(case when households.is_extreme_poor then households.household_size else 0 end)
            as extreme_poor_population
    from households
    inner join bridge on households.village_code = bridge.village_code
    group by bridge.region_code, bridge.level, households.period
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
    cross join (select distinct period from rolled) as periods
    left join latest_units
        on overlap.unit_code = latest_units.unit_code
        and periods.period = latest_units.period
    group by all
)

select
    rolled.region_code,
    rolled.level,
    rolled.period,
    rolled.households::bigint as households,
    rolled.population::bigint as population,
    rolled.poverty_line::bigint as poverty_line,
    rolled.poverty_line_year::integer as poverty_line_year,
    rolled.poor_population::bigint as poor_population,
    {{ pct('rolled.poor_population', 'rolled.population') }}::double as poverty_rate,
    {{ pct('rolled.weighted_gap', 'rolled.population') }}::double as poverty_gap_index,
    {{ pct('rolled.weighted_gap_squared', 'rolled.population') }}::double as poverty_severity_index,
    rolled.extreme_poor_population::bigint as extreme_poor_population,
    {{ pct('rolled.extreme_poor_population', 'rolled.population') }}::double as extreme_poverty_rate,
    coalesce(coverage.reporting_units, 0)::integer as reporting_units,
    coalesce(coverage.expected_units, 0)::integer as expected_units
from rolled
left join coverage
    on rolled.region_code = coverage.region_code
    and rolled.period = coverage.period
