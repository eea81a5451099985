with source as (
    select * from {{ source('raw', 'signoffs') }}
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
