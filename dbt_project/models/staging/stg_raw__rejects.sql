with source as (
    select * from {{ source('raw', 'rejects') }}
),

renamed as (
    select
        -- where
        submission_id,
        table_name,
        line,
        column_name,
        -- what
        value,
        reason_code
    from source
)

select * from renamed
