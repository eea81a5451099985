-- One row per Kaltim region with its ancestors' codes (village → kecamatan → kab/kota → province).
with regions as (
    select * from {{ ref('stg_reference__regions') }}
)

select
    region_code,
    region_name,
    level,
    parent_code,
    case when level <> 'province' then substr(region_code, 1, 5) end as regency_code,
    case when level in ('subdistrict', 'village') then substr(region_code, 1, 8) end as subdistrict_code,
    substr(region_code, 1, 2) as province_code
from regions
