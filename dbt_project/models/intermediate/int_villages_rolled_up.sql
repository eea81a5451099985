-- One row per village and each region it lies in (itself, its kecamatan, kab/kota, province):
-- the bridge every mart aggregates household and person rows through.
with villages as (
    select * from {{ ref('int_regions_flattened') }} where level = 'village'
)

select region_code as village_code, region_code, 'village' as level from villages
union all
select region_code, subdistrict_code, 'subdistrict' from villages
union all
select region_code, regency_code, 'regency' from villages
union all
select region_code, province_code, 'province' from villages
