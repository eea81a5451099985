-- The floor: the essential work of the nightly run in one DuckDB connection, no
-- orchestration, reports or quality suites. Inputs are views hh_src, mem_src, rec_src
-- (all text, one row per CSV/XLSX row, with unit_code) made by benchmarks/nightly.py,
-- a one-row temp table key_pads(ipad, opad) holding the HMAC key pads.

create or replace macro rp(c) as try_cast(regexp_replace(regexp_replace(c, ',00$', ''), '[^0-9-]', '', 'g') as bigint);
create or replace macro d(c) as coalesce(try_strptime(c, '%Y-%m-%d'), try_strptime(c, '%d/%m/%Y'), try_strptime(c, '%d-%m-%Y'))::date;
create or replace macro hmac(c) as ('0x' || left(sha256((select opad from key_pads) || unhex(sha256((select ipad from key_pads) || encode(c)))), 32))::uhugeint;

create or replace table hh as
select unit_code, trim(no_kk) as kk, hmac(trim(no_kk)) as household_key, hmac(trim(nik_kepala)) as head_key,
       case when length(trim(kode_desa)) = 10 then substr(kode_desa, 1, 2) || '.' || substr(kode_desa, 3, 2) || '.'
            || substr(kode_desa, 5, 2) || '.' || substr(kode_desa, 7, 4) else trim(kode_desa) end as village,
       try_cast(jumlah_anggota as integer) as n, rp(pengeluaran_per_kapita) as y,
       try_cast(desil as integer) as decile, d(tanggal_verifikasi) as verified_on
from hh_src;

-- No. KK pseudonymised once per household, joined to members and receipts (as ingestion does)
create or replace table kk_map as select unit_code, kk, any_value(household_key) as household_key from hh group by all;

create or replace table mem as
select mem_src.unit_code, hmac(trim(nik)) as person_key, k.household_key, upper(trim(jenis_kelamin)) as sex,
       d(tanggal_lahir) as birth, lower(trim(status_pekerjaan)) as status, upper(trim(lapangan_usaha)) as industry
from mem_src left join kk_map k on k.unit_code = mem_src.unit_code and k.kk = trim(mem_src.no_kk);

create or replace table rec as
select rec_src.unit_code, k.household_key, hmac(nullif(trim(nik), '')) as person_key,
       upper(trim(kode_program)) as program, d(tanggal_salur) as disbursed_on, rp(nilai) as amount
from rec_src left join kk_map k on k.unit_code = rec_src.unit_code and k.kk = trim(rec_src.no_kk);

create or replace table hh_lined as
select hh.*, l.poverty_line as z, l.extreme_poverty_line as ze,
       hh.y < l.poverty_line as poor, greatest(0, (l.poverty_line - hh.y) / l.poverty_line) as gap
from hh join lines l on l.regency_code = substr(hh.village, 1, 5);

create or replace table fct_poverty as
select coalesce(village, subdistrict, regency, province) as region_code,
       case when village is not null then 'village' when subdistrict is not null then 'subdistrict'
            when regency is not null then 'regency' else 'province' end as level,
       count(*) as households, sum(n) as population, sum(n) filter (where poor) as poor_population,
       100.0 * sum(n) filter (where poor) / sum(n) as p0, 100.0 * sum(n * gap) / sum(n) as p1,
       100.0 * sum(n * gap * gap) / sum(n) as p2, 100.0 * sum(n) filter (where y < ze) / sum(n) as extreme
from (select *, village, substr(village, 1, 8) as subdistrict, substr(village, 1, 5) as regency, '64' as province from hh_lined)
group by grouping sets ((village), (subdistrict), (regency), (province));

create or replace table fct_employment as
select coalesce(village, subdistrict, regency, province) as region_code, coalesce(poverty, 'all') as poverty_status,
       count(*) as working_age, count(*) filter (where status in ('bekerja', 'menganggur')) as labour_force,
       count(*) filter (where status = 'menganggur') as unemployed
from (
    select h.village, substr(h.village, 1, 8) as subdistrict, substr(h.village, 1, 5) as regency, '64' as province,
           case when h.poor then 'poor' else 'non_poor' end as poverty, m.status
    from mem m join hh_lined h using (unit_code, household_key)
    where date_diff('year', m.birth, $period_end) - (strftime(m.birth, '%m%d') > strftime($period_end, '%m%d'))::int >= 15
)
group by grouping sets ((village, poverty), (village), (subdistrict, poverty), (subdistrict), (regency, poverty),
                        (regency), (province, poverty), (province));

create or replace table fct_program_coverage as
with per_household as (
    select h.village, h.poor, h.household_key, r.program, sum(r.amount) as amount
    from rec r join hh_lined h using (unit_code, household_key)
    group by grouping sets ((h.village, h.poor, h.household_key, r.program), (h.village, h.poor, h.household_key))
)
select coalesce(village, subdistrict, regency, province) as region_code, coalesce(program, 'ANY') as program,
       count(*) as recipients, count(*) filter (where poor) as poor_recipients, sum(amount) as amount
from (select *, substr(village, 1, 8) as subdistrict, substr(village, 1, 5) as regency, '64' as province from per_household)
group by grouping sets ((village, program), (subdistrict, program), (regency, program), (province, program));
