-- The contract's cell rules as DuckDB macros (sd_*), installed on every ingestion connection
-- (orchestration/ingest/validate.py builds the per-table checks from them).
-- trim() removes Unicode space separators only, so an ASCII value (as many bytes as characters)
-- that neither starts with a space or control character nor ends with a space cannot need it,
-- and is passed through (tests/test_ingest_rules.py proves this equal to trim on every character)
create or replace temp macro sd_blank(c) as case
    when ascii(c) between 33 and 126 and not ends_with(c, ' ') and strlen(c) = length(c) then c
    else nullif(trim(c), '') end;
create or replace temp macro sd_is16(c) as regexp_full_match(c, '[0-9]{16}');
create or replace temp macro sd_numeric_id(c) as
    regexp_full_match(c, '[0-9]+([.,][0-9]+)?[eE][+-]?[0-9]+');
create or replace temp macro sd_nik_day(c) as try_cast(substr(c, 7, 2) as integer);
-- digits 7-12 of a 16-digit NIK as one number ddmmyy (a woman's dd + 40), or null
create or replace temp macro sd_nik_ddmmyy(c) as
    case when sd_is16(c) then substr(c, 7, 6)::integer end;
-- a day that exists in month m of year yy (two digits, as strptime's %y reads them: 00-68 are
-- 2000-2068, 69-99 are 1969-1999, so a year is leap exactly when yy % 4 = 0), by arithmetic
create or replace temp macro sd_day_exists(d, m, yy) as
    m between 1 and 12 and d between 1 and case
        when m = 2 then 28 + (yy % 4 = 0)::integer when m in (4, 6, 9, 11) then 30 else 31 end;
create or replace temp macro sd_ddmmyy_ok(n) as
    (n // 10000 between 1 and 31 or n // 10000 between 41 and 71)
    and sd_day_exists((n // 10000) % 40, (n // 100) % 100, n % 100);
create or replace temp macro sd_int(c) as case
    when regexp_full_match(c, '-?[0-9]{1,9}([.,]0+)?') then
        try_cast(regexp_extract(c, '^-?[0-9]+') as bigint) end;
create or replace temp macro sd_rp_body(c) as
    regexp_replace(regexp_replace(upper(c), '^RP\.?', ''), '\s', '', 'g');
create or replace temp macro sd_rupiah(c) as case
    when regexp_full_match(sd_rp_body(c), '-?[0-9]+') then try_cast(sd_rp_body(c) as bigint)
    when regexp_full_match(sd_rp_body(c), '-?[0-9]{1,3}(\.[0-9]{3})+(,00)?') then
        try_cast(replace(regexp_replace(sd_rp_body(c), ',00$', ''), '.', '') as bigint)
    when regexp_full_match(sd_rp_body(c), '-?[0-9]{1,3}(,[0-9]{3})+(\.00)?') then
        try_cast(replace(regexp_replace(sd_rp_body(c), '\.00$', ''), ',', '') as bigint)
    when regexp_full_match(sd_rp_body(c), '-?[0-9]+[.,]00') then
        try_cast(regexp_extract(sd_rp_body(c), '^-?[0-9]+') as bigint)
    end;
create or replace temp macro sd_date(c) as (case
    when regexp_full_match(c, '[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}') then try_strptime(c, '%Y-%m-%d')
    when regexp_full_match(c, '[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}') then try_strptime(c, '%d/%m/%Y')
    when regexp_full_match(c, '[0-9]{1,2}-[0-9]{1,2}-[0-9]{4}') then try_strptime(c, '%d-%m-%Y')
    end)::date;
create or replace temp macro sd_region(c) as case
    when regexp_full_match(c, '[0-9]{2}(\.[0-9]{2}){2}\.[0-9]{4}') then c
    when regexp_full_match(c, '[0-9]{10}') then
        substr(c, 1, 2) || '.' || substr(c, 3, 2) || '.' || substr(c, 5, 2) || '.' || substr(c, 7, 4)
    end;
create or replace temp macro sd_age(birth, on_date) as
    year(on_date) - year(birth)
    - case when month(on_date) * 100 + day(on_date) < month(birth) * 100 + day(birth) then 1 else 0 end;
