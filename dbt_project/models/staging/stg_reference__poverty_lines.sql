with source as (
    select * from {{ ref('poverty_lines') }}
),

renamed as (
    select
        regency_code,
        year::integer as line_year,
        poverty_line::bigint as poverty_line,
        extreme_poverty_line::bigint as extreme_poverty_line,
        method,
        source,
        extreme_method,
        extreme_source
    from source
)

select * from renamed
