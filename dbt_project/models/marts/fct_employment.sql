with members as (
    select * from {{ ref('int_members_aged') }} where is_working_age
),

bridge as (
    select * from {{ ref('int_villages_rolled_up') }}
),

regions_periods as (
    select distinct region_code, level, period from {{ ref('fct_poverty') }}
),

statuses as (
    select unnest(['poor', 'non_poor', 'all']) as poverty_status
),

-- counted per village first: the roll-up below then joins a few thousand rows, not millions
village_counts as (
    select
        village_code,
        period,
        case when is_poor then 'poor' when not is_poor then 'non_poor' end as poverty_status,
        count(*) as working_age_population,
        count(*) filter (where is_employed) as employed,
        count(*) filter (where is_unemployed) as unemployed
    from members
    group by all
),

tagged as (
    select * from village_counts where poverty_status is not null
    union all
    select * replace ('all' as poverty_status) from village_counts
),

counted as (
    select
        bridge.region_code,
        bridge.level,
        tagged.period,
        tagged.poverty_status,
        sum(tagged.working_age_population) as working_age_population,
        sum(tagged.employed) as employed,
        sum(tagged.unemployed) as unemployed
    from tagged
    inner join bridge on tagged.village_code = bridge.village_code
    group by all
)

select
    regions_periods.region_code,
    regions_periods.level,
    regions_periods.period,
    statuses.poverty_status,
    coalesce(counted.working_age_population, 0)::bigint as working_age_population,
    coalesce(counted.employed + counted.unemployed, 0)::bigint as labour_force,
    coalesce(counted.employed, 0)::bigint as employed,
    coalesce(counted.unemployed, 0)::bigint as unemployed,
    {{ pct('counted.unemployed', 'counted.employed + counted.unemployed') }}::double as unemployment_rate,
    {{ pct('counted.employed + counted.unemployed', 'counted.working_age_population') }}::double
        as participation_rate,
    {{ approval_columns('approved') }}
from regions_periods
cross join statuses
left join counted
    on regions_periods.region_code = counted.region_code
    and regions_periods.level = counted.level
    and regions_periods.period = counted.period
    and statuses.poverty_status = counted.poverty_status
left join {{ ref('int_regions_approved') }} as approved
    on regions_periods.region_code = approved.region_code
    and regions_periods.period = approved.period
