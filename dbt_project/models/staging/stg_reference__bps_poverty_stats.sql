with source as (
    select * from {{ ref('bps_poverty_stats') }}
),

renamed as (
    select
        kode_wilayah as region_code,
        case level when 'provinsi' then 'province' else 'regency' end as level,
        tahun::integer as stats_year,
        periode as stats_period,
        p0_persen::double as poverty_rate,
        garis_kemiskinan_rp_kapita_bulan::double as poverty_line,
        source,
        catatan as note
    from source
)

select * from renamed
