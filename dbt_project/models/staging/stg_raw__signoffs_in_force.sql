-- decisions are read only from a log found intact by the night's verification
with log_state as (
    select coalesce(bool_and(intact), false) as intact
    from {{ source('raw', 'signoff_log_state') }}
),

source as (
    select * from {{ source('raw', 'signoffs_in_force') }}
    where (select intact from log_state)
),

renamed as (
    select
        -- ids
        decision_id,
        region_code,
        period,
        -- decision
        action,
        decided_at,
        decided_by,
        submission_ids
    from source
)

select * from renamed
