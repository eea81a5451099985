with source as (
    select * from {{ ref('kaltim_regions') }}
),

renamed as (
    select
        kode as region_code,
        nama as region_name,
        case level
            when 'provinsi' then 'province'
            when 'kabupaten_kota' then 'regency'
            when 'kecamatan' then 'subdistrict'
            when 'desa_kelurahan' then 'village'
        end as level,
        nullif(kode_induk, '') as parent_code,
        jenis as region_type,
        kode_bps as bps_code,
        source
    from source
)

select * from renamed
