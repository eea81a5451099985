with households as (
    select * from {{ ref('int_households_classified') }}
),

members as (
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
-- few first, and only their rows are grouped by person and period (half the model's time)
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
    coalesce(per_region.affected_rows, 0)::bigint as affected_rows
from regions_periods
cross join issues
left join per_region
    on regions_periods.region_code = per_region.region_code
    and regions_periods.level = per_region.level
    and regions_periods.period = per_region.period
    and issues.issue = per_region.issue
