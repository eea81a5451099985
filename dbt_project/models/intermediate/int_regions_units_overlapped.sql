-- One row per region and registered submitting unit whose area overlaps it: the unit is the
-- region itself, lies above it, or lies below it.
with regions as (
    select region_code from {{ ref('int_regions_flattened') }}
),

units as (
    select unit_code from {{ ref('stg_reference__submitting_units') }}
)

select
    regions.region_code,
    units.unit_code
from regions
inner join units
    on units.unit_code = regions.region_code
    or starts_with(regions.region_code, units.unit_code || '.')
    or starts_with(units.unit_code, regions.region_code || '.')
