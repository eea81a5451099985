-- BPS's official poverty figures for Kaltim and its regencies (reference data, with sources):
-- published beside the register's so that both can be read over the years.
select
    region_code::varchar as region_code,
    level::varchar as level,
    stats_year::integer as stats_year,
    stats_period::varchar as stats_period,
    poverty_rate::double as poverty_rate,
    poverty_line::double as poverty_line,
    source::varchar as source,
    note::varchar as note
from {{ ref('stg_reference__bps_poverty_stats') }}
