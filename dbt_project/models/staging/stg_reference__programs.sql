with source as (
    select * from {{ ref('programs') }}
),

renamed as (
    select
        program_code,
        name as program_name,
        recipient_unit,
        description,
        source
    from source
)

select * from renamed
