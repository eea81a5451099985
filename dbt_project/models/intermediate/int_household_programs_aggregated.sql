-- One row per household and program it received in the period (each catalogue code it
-- received, plus ANY for any program), with the amount and the household's poverty status.
with receipts as (
    select * from {{ ref('stg_raw__receipts') }}
),

households as (
    select * from {{ ref('int_households_classified') }}
),

joined as (
    select
        households.submission_id,
        households.household_key,
        households.period,
        households.village_code,
        households.is_poor,
        receipts.program_code,
        receipts.amount
    from receipts
    inner join households
        on receipts.submission_id = households.submission_id
        and receipts.household_key = households.household_key
)

select
    submission_id, household_key, period, village_code, is_poor, program_code,
    sum(amount)::bigint as amount
from joined
group by all
union all
select
    submission_id, household_key, period, village_code, is_poor, 'ANY' as program_code,
    sum(amount)::bigint as amount
from joined
group by all
