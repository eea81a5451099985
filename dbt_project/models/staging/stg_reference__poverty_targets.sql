with source as (
    select * from {{ ref('poverty_targets') }}
),

renamed as (
    select
        target_id,
        region_code,
        scope,
        measure,
        direction,
        target_year,
        target_low,
        target_high,
        statement,
        source
    from source
)

select * from renamed
