-- DuckDB materializes a CTE that is read more than once; households and members are read whole
-- by several of the queries below, and reading the tables again costs less than copying them
with households as not materialized (
    select * from {{ ref('int_households_classified') }}
),

members as not materialized (
    select * from {{ ref('int_members_aged') }}
),

issues as (
    select unnest(['household_size_mismatch', 'nik_sex_mismatch', 'person_in_several_units']) as issue
),

bridge as (
    select * from {{ ref('int_villages_rolled_up') }}
),

-- every region (at every level) with accepted households in the period
regions_periods as (
    select distinct bridge.region_code, bridge.level, households.period
    from households
    inner join bridge on households.village_code = bridge.village_code
),

member_counts as (
    select submission_id, household_key, count(*) as member_rows
    from members
    group by all
),

size_mismatch as (
    select households.village_code, households.period, count(*) as affected_rows
    from households
    left join member_counts
        on households.submission_id = member_counts.submission_id
        and households.household_key = member_counts.household_key
    where households.household_size <> coalesce(member_counts.member_rows, 0)
    group by all
),

sex_mismatch as (
    select village_code, period, count(*) as affected_rows
    from members
    where nik_sex <> sex
    group by all
),

-- a person in several units has several rows: grouping by the 16-byte key alone finds those
-- few first, and only their rows are grouped by person and period
repeated_persons as (
    select person_key
    from members
    group by person_key
    having count(*) > 1
),

several_units as (
    select person_key, period
    from members
    where person_key in (select person_key from repeated_persons)
    group by all
    having min(unit_code) <> max(unit_code)  -- more than one unit, without a distinct count
),

in_several_units as (
    select members.village_code, members.period, count(*) as affected_rows
    from members
    inner join several_units
        on members.person_key = several_units.person_key
        and members.period = several_units.period
    group by all
),

found as (
    select *, 'household_size_mismatch' as issue from size_mismatch
    union all
    select *, 'nik_sex_mismatch' from sex_mismatch
    union all
    select *, 'person_in_several_units' from in_several_units
),

-- rows counted per village, then per region: each row lies in exactly one village, so a
-- region's count is the count of its rows
{%- set thresholds = sudden_change_thresholds() %}

-- figures of each region (kecamatan and above) against its previous period with figures, where
-- every expected unit
-- reported in both (otherwise the change is the missing units', which reporting_units shows)
figures as (
    select
        poverty.region_code,
        poverty.level,
        poverty.period,
        poverty.households,
        poverty.reporting_units = poverty.expected_units as is_complete,
        poverty.households::double as households_value,
        poverty.population::double as population_value,
        poverty.poverty_rate::double as poverty_rate_value,
        coalesce(coverage.recipient_households, 0)::double as recipient_households_value
    from {{ ref('fct_poverty') }} as poverty
    left join {{ ref('fct_program_coverage') }} as coverage
        on poverty.region_code = coverage.region_code
        and poverty.level = coverage.level
        and poverty.period = coverage.period
        and coverage.program_code = 'ANY'
    -- from kecamatan up: a village's few households change by large shares as a matter of course
    where poverty.level <> 'village'
),

-- one row per region, period and measure (a union, which column lineage can follow)
changes as (
    {%- for measure in thresholds %}
    select
        region_code,
        level,
        period,
        households,
        '{{ measure }}' as measure,
        {{ measure }}_value as current_value,
        is_complete and lag(is_complete) over previous as is_comparable,
        lag(period) over previous as previous_period,
        lag({{ measure }}_value) over previous as previous_value
    from figures
    window previous as (partition by region_code, level order by period)
    {{- '\n    union all' if not loop.last }}
    {%- endfor %}
),

sudden as (
    select
        region_code,
        level,
        period,
        'sudden_change_' || measure as issue,
        case when is_comparable then previous_period end as previous_period,
        case when is_comparable then previous_value end as previous_value,
        current_value,
        case measure
            {%- for measure in thresholds if measure != 'poverty_rate' %}
            when '{{ measure }}' then {{ pct('current_value - previous_value', 'previous_value') }}
            {%- endfor %}
            else current_value - previous_value
        end * case when is_comparable then 1 end as change,
        case measure
            {%- for measure, threshold in thresholds.items() %}
            when '{{ measure }}' then {{ threshold }}
            {%- endfor %}
        end as threshold,
        households
    from changes
),

per_region as (
    select bridge.region_code, bridge.level, found.period, found.issue,
        sum(found.affected_rows) as affected_rows
    from found
    inner join bridge on found.village_code = bridge.village_code
    group by all
)

select
    regions_periods.region_code,
    regions_periods.level,
    regions_periods.period,
    issues.issue,
    coalesce(per_region.affected_rows, 0)::bigint as affected_rows,
    null::varchar as previous_period,
    null::double as previous_value,
    null::double as current_value,
    null::double as change,
    null::double as threshold
from regions_periods
cross join issues
left join per_region
    on regions_periods.region_code = per_region.region_code
    and regions_periods.level = per_region.level
    and regions_periods.period = per_region.period
    and issues.issue = per_region.issue
union all
select
    region_code,
    level,
    period,
    issue,
    -- a flagged change concerns every household row of the region in the period
    (case when abs(change) > threshold then households else 0 end)::bigint as affected_rows,
    previous_period::varchar as previous_period,
    previous_value::double as previous_value,
    current_value::double as current_value,
    change::double as change,
    threshold::double as threshold
from sudden
