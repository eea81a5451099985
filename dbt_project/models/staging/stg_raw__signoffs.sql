-- decisions are read only from a log found intact by the night's verification
with log_state as (
    select coalesce(bool_and(intact), false) as intact
    from {{ source('raw', 'signoff_log_state') }}
),

source as (
    select * from {{ source('raw', 'signoffs') }}
    where (select intact from log_state)
),

renamed as (
    select
        -- ids
        decision_id,
        previous_id,
        region_code,
        period,
        -- decision
        decided_at,
        action,
        decided_by,
        note,
        publication_id,
        array_to_string(submission_ids, ',') as submission_ids,
        figures_digest
    from source
)

select * from renamed
