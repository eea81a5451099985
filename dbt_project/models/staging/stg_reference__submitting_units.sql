with source as (
    select * from {{ ref('submitting_units') }}
),

renamed as (
    select
        unit_code,
        unit_name,
        level
    from source
)

select * from renamed
