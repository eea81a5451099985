-- What the pending revisions (received for an approved, locked period) would change, figure by
-- figure, in every region they touch: the published figures against the same figures computed
-- with each unit's pending revision in place of its accepted submission (macros/poverty.sql).
with pending as (
    select submission_id, unit_code, period
    from {{ ref('stg_raw__submissions') }}
    where status = 'pending'
),

current_households as (
    select * exclude (build_digest)
    from {{ ref('int_households_classified') }}
    where period in (select period from pending)
),

proposed as (
    select * from current_households
    where not exists (
        select 1 from pending
        where pending.unit_code = current_households.unit_code
            and pending.period = current_households.period
    )
    union all by name
    select * from {{ ref('int_households_pending_classified') }}
),

-- the villages of the pending units, before and after: every region above them is touched
touched as (
    select distinct bridge.region_code, bridge.level, villages.period, villages.unit_code
    from (
        select village_code, period, unit_code from current_households
        where exists (
            select 1 from pending
            where pending.unit_code = current_households.unit_code
                and pending.period = current_households.period
        )
        union
        select village_code, period, unit_code from {{ ref('int_households_pending_classified') }}
    ) as villages
    inner join {{ ref('int_villages_rolled_up') }} as bridge
        on villages.village_code = bridge.village_code
),

regions as (
    select
        touched.region_code,
        touched.level,
        touched.period,
        string_agg(distinct touched.unit_code, ',' order by touched.unit_code) as pending_units,
        string_agg(distinct pending.submission_id, ',' order by pending.submission_id)
            as pending_submission_ids
    from touched
    inner join pending
        on touched.unit_code = pending.unit_code
        and touched.period = pending.period
    group by all
),

{%- set measures = ['households', 'population', 'poor_population', 'poverty_rate',
                    'poverty_gap_index', 'poverty_severity_index', 'extreme_poverty_rate'] %}

published as (
    select * from {{ ref('fct_poverty') }} where period in (select period from pending)
),

with_pending as (
    {{ poverty_figures('proposed') }}
),

-- one row per figure: published beside pending
{%- for measure in measures %}

{{ measure }}_compared as (
    select
        regions.region_code,
        regions.level,
        regions.period,
        '{{ measure }}' as measure,
        {{ loop.index }} as position,
        published.{{ measure }}::double as published_value,
        with_pending.{{ measure }}::double as pending_value,
        regions.pending_units,
        regions.pending_submission_ids
    from regions
    left join published
        on regions.region_code = published.region_code
        and regions.level = published.level
        and regions.period = published.period
    left join with_pending
        on regions.region_code = with_pending.region_code
        and regions.level = with_pending.level
        and regions.period = with_pending.period
),
{%- endfor %}

compared as (
    {%- for measure in measures %}
    select * from {{ measure }}_compared
    {{- '\n    union all' if not loop.last }}
    {%- endfor %}
)

select
    region_code::varchar as region_code,
    level::varchar as level,
    period::varchar as period,
    measure::varchar as measure,
    published_value::double as published_value,
    pending_value::double as pending_value,
    (pending_value - published_value)::double as change,
    pending_units::varchar as pending_units,
    pending_submission_ids::varchar as pending_submission_ids
from compared
order by period, region_code, position
