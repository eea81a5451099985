with programs as (
    select program_code from {{ ref('stg_reference__programs') }}
    union all
    select 'ANY'
),

bridge as (
    select * from {{ ref('int_villages_rolled_up') }}
),

-- counted per village first: the roll-up joins a few thousand rows, not a million
village_households as (
    select village_code, period, count(*) filter (where is_poor) as poor_households
    from {{ ref('int_households_classified') }}
    group by all
),

village_receipts as (
    select
        village_code,
        period,
        program_code,
        count(*) as recipient_households,
        count(*) filter (where is_poor) as poor_recipient_households,
        sum(amount) as amount_disbursed
    from {{ ref('int_household_programs_aggregated') }}
    group by all
),

poor_households as (
    select
        bridge.region_code,
        bridge.level,
        households.period,
        sum(households.poor_households) as poor_households
    from village_households as households
    inner join bridge on households.village_code = bridge.village_code
    group by all
),

received as (
    select
        bridge.region_code,
        bridge.level,
        receipts.period,
        receipts.program_code,
        sum(receipts.recipient_households) as recipient_households,
        sum(receipts.poor_recipient_households) as poor_recipient_households,
        sum(receipts.amount_disbursed) as amount_disbursed
    from village_receipts as receipts
    inner join bridge on receipts.village_code = bridge.village_code
    group by all
),

joined as (
    select
        poor_households.region_code,
        poor_households.level,
        poor_households.period,
        programs.program_code,
        coalesce(received.recipient_households, 0) as recipient_households,
        coalesce(received.poor_recipient_households, 0) as poor_recipient_households,
        poor_households.poor_households,
        coalesce(received.amount_disbursed, 0) as amount_disbursed
    from poor_households
    cross join programs
    left join received
        on poor_households.region_code = received.region_code
        and poor_households.level = received.level
        and poor_households.period = received.period
        and programs.program_code = received.program_code
)

select
    joined.region_code,
    joined.level,
    joined.period,
    joined.program_code,
    recipient_households::bigint as recipient_households,
    poor_recipient_households::bigint as poor_recipient_households,
    poor_households::bigint as poor_households,
    {{ pct('poor_recipient_households', 'poor_households') }}::double as coverage_rate,
    {{ pct('recipient_households - poor_recipient_households', 'recipient_households') }}::double
        as inclusion_error_rate,
    (100.0 - {{ pct('poor_recipient_households', 'poor_households') }})::double as exclusion_error_rate,
    joined.amount_disbursed::bigint as amount_disbursed,
    {{ approval_columns('approved') }}
from joined
left join {{ ref('int_regions_approved') }} as approved
    on joined.region_code = approved.region_code
    and joined.period = approved.period
