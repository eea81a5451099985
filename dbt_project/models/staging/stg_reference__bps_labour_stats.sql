with source as (
    select * from {{ ref('bps_labour_stats') }}
),

renamed as (
    select
        kode_wilayah as region_code,
        case level when 'provinsi' then 'province' else 'regency' end as level,
        tahun::integer as stats_year,
        periode as stats_period,
        tpt_persen::double as unemployment_rate,
        tpak_persen::double as participation_rate,
        source,
        catatan as note
    from source
)

select * from renamed
