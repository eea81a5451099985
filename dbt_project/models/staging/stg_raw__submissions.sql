with source as (
    select * from {{ source('raw', 'submissions') }}
),

renamed as (
    select
        -- ids
        submission_id,
        unit_code,
        period,
        -- times
        submitted_at,
        received_at,
        -- outcome
        status,
        reason_code,
        reason,
        superseded_by,
        source_format,
        -- counts
        coalesce(households_received, 0)::bigint as households_received,
        coalesce(households_accepted, 0)::bigint as households_accepted,
        coalesce(members_accepted, 0)::bigint as members_accepted,
        coalesce(receipts_accepted, 0)::bigint as receipts_accepted,
        coalesce(rows_rejected, 0)::bigint as rows_rejected
    from source
)

select * from renamed
