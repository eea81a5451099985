with regions as (
    select * from {{ ref('int_regions_flattened') }}
),

units as (
    select unit_code from {{ ref('stg_reference__submitting_units') }}
)

select
    regions.region_code,
    regions.region_name,
    regions.level,
    regions.parent_code,
    regions.regency_code,
    regions.subdistrict_code,
    units.unit_code is not null as is_submitting_unit
from regions
left join units on regions.region_code = units.unit_code
