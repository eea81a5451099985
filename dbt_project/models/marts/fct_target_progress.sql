-- Progress towards the poverty targets (seed poverty_targets): for the province and every
-- regency, each period's figure against each target that applies to it (its own, or one of a
-- region above it whose scope is region_and_below), with the gap and whether it is on track.
with targets as (
    select * from {{ ref('stg_reference__poverty_targets') }}
),

figures as (
    select region_code, level, period, 'poverty_rate' as measure, poverty_rate as value,
        approval_status
    from {{ ref('fct_poverty') }}
    where level in ('regency', 'province')
    union all
    select region_code, level, period, 'extreme_poverty_rate', extreme_poverty_rate,
        approval_status
    from {{ ref('fct_poverty') }}
    where level in ('regency', 'province')
    union all
    select region_code, level, period, 'uep_recipient_households', recipient_households,
        approval_status
    from {{ ref('fct_program_coverage') }}
    where level in ('regency', 'province') and program_code = 'UEP'
),

with_previous as (
    select
        *,
        lag(period) over previous as previous_period,
        lag(value) over previous as previous_value
    from figures
    window previous as (partition by region_code, level, measure order by period)
),

matched as (
    select
        figures.*,
        targets.target_id,
        targets.direction,
        targets.target_year,
        targets.target_low,
        targets.target_high,
        targets.statement,
        targets.source,
        case targets.direction
            when 'at_most' then figures.value - targets.target_high
            else targets.target_low - figures.value
        end as gap,
        case targets.direction
            when 'at_most' then figures.value < figures.previous_value
            else figures.value > figures.previous_value
        end as is_improving
    from with_previous as figures
    inner join targets
        on figures.measure = targets.measure
        and (
            figures.region_code = targets.region_code
            or (
                targets.scope = 'region_and_below'
                and {{ region_covers('targets.region_code', 'figures.region_code') }}
            )
        )
)

select
    region_code::varchar as region_code,
    level::varchar as level,
    period::varchar as period,
    target_id::varchar as target_id,
    measure::varchar as measure,
    value::double as value,
    previous_period::varchar as previous_period,
    previous_value::double as previous_value,
    direction::varchar as direction,
    target_year::integer as target_year,
    target_low::double as target_low,
    target_high::double as target_high,
    gap::double as gap,
    (
        case
            when gap <= 0 then 'met'
            when target_year is not null and cast(left(period, 4) as integer) > target_year
                then 'missed'
            when is_improving then 'on_track'
            when is_improving is null then 'not_met'
            else 'off_track'
        end
    )::varchar as status,
    coalesce(
        gap <= 0 or (is_improving and coalesce(cast(left(period, 4) as integer) <= target_year, true)),
        false
    )::boolean as on_track,
    approval_status::varchar as approval_status,
    statement::varchar as statement,
    source::varchar as source
from matched
