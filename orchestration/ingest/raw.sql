-- The raw schema of the build file: what ingestion and sign-off record (created if missing
-- on every connection to the build file; orchestration/ingest/store.py).
create schema if not exists raw;
create table if not exists raw.submissions (
    submission_id varchar primary key,   -- SHA-256 of the zip, or of the folder's file listing
    landing_name varchar,                -- the folder or zip name as it arrived
    source_format varchar,               -- csv | xlsx
    unit_code varchar,                   -- kode_wilayah, dotted
    period varchar,                      -- YYYY-MM
    submitted_at timestamptz,            -- dikirim_pada
    received_at timestamptz,
    status varchar not null,             -- accepted | superseded | quarantined | pending
    reason_code varchar,                 -- quarantine cause
    reason varchar,
    superseded_by varchar,
    households_received bigint, households_accepted bigint,
    members_received bigint, members_accepted bigint,
    receipts_received bigint, receipts_accepted bigint,
    rows_rejected bigint,
    report_path varchar
);
create table if not exists raw.households (
    submission_id varchar not null,
    line bigint not null,
    household_key uhugeint not null,     -- HMAC-SHA256 of no_kk (first 128 bits)
    head_person_key uhugeint not null,   -- HMAC-SHA256 of nik_kepala
    village_code varchar not null,
    household_size integer not null,
    expenditure_per_capita bigint not null,
    welfare_decile integer,
    verified_on date
);
create table if not exists raw.members (
    submission_id varchar not null,
    line bigint not null,
    person_key uhugeint not null,        -- HMAC-SHA256 of nik
    household_key uhugeint not null,
    sex varchar not null,                -- L | P as declared
    nik_sex varchar not null,            -- L | P as encoded in the NIK (day > 40: P)
    birth_date date not null,
    employment_status varchar,
    industry_section varchar,
    age_years integer not null,          -- in full years at the period's last day
    is_working_age boolean not null      -- age_years >= the contract's working age
);
create table if not exists raw.receipts (
    submission_id varchar not null,
    line bigint not null,
    household_key uhugeint not null,
    person_key uhugeint,
    program_code varchar not null,
    disbursed_on date not null,
    amount bigint not null
);
create table if not exists raw.pseudonym_key (
    fingerprint varchar not null         -- HMAC of a fixed text with the key: which key, not the key
);
-- The Forum Satu Data's decisions (orchestration/forum/signoff.py): append-only, each decision's id
-- a SHA-256 over its fields and the previous decision's id, so a changed or removed row shows.
create table if not exists raw.signoffs (
    decision_id varchar primary key,
    previous_id varchar,                 -- the decision before it (null for the first)
    decided_at timestamptz not null,
    action varchar not null,             -- confirm | withdraw (a unit) | approve | unlock (a region)
    region_code varchar not null,        -- the submitting unit, or the region approved
    period varchar not null,             -- YYYY-MM
    decided_by varchar not null,         -- the official who decided (name and office)
    note varchar,                        -- the reason, required to withdraw or unlock
    publication_id varchar,              -- the publication whose figures were looked at
    submission_ids varchar[],            -- confirmed/approved submissions; released by an unlock
    figures_digest varchar               -- SHA-256 of the published figures confirmed/approved
);
-- In force: the last confirm-or-withdraw of each unit and period that is a confirm, the last
-- approve-or-unlock of each region and period that is an approve. Read by the sign-off module
-- and by the warehouse (a dbt source): the rule is here once.
create or replace view raw.signoffs_in_force as
select * exclude (latest) from (
    select *, row_number() over (
        partition by region_code, period, action in ('confirm', 'withdraw')
        order by decided_at desc, decision_id
    ) as latest
    from raw.signoffs
)
where latest = 1 and action in ('confirm', 'approve');
-- The sign-off log's verification (signoff.record_log_state), each night before the warehouse
-- is built: confirmations and approvals are published only from a log found intact.
create table if not exists raw.signoff_log_state (
    checked_at timestamptz not null,
    decisions bigint not null,
    intact boolean not null,
    problems varchar[] not null          -- each decision changed, removed or inserted
);
create table if not exists raw.rejects (
    submission_id varchar not null,
    table_name varchar not null,
    line bigint not null,
    column_name varchar not null,
    value varchar,                       -- personal data pseudonymised (HMAC, as text), names never kept
    reason_code varchar not null
);
