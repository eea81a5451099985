with source as (
    select * from {{ source('raw', 'signoffs_in_force') }}
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
