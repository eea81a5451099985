with source as (
    select * from {{ source('raw', 'households') }}
),

renamed as (
    select
        -- keys
        submission_id,
        line,
        household_key,
        head_person_key,
        village_code,
        -- facts
        household_size::integer as household_size,
        expenditure_per_capita::bigint as expenditure_per_capita,
        welfare_decile::integer as welfare_decile,
        verified_on
    from source
)

select * from renamed
