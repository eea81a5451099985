with source as (
    select * from {{ source('raw', 'receipts') }}
),

renamed as (
    select
        -- keys
        submission_id,
        line,
        household_key,
        person_key,
        program_code,
        -- facts
        disbursed_on,
        amount::bigint as amount
    from source
)

select * from renamed
