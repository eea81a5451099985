-- One row per valid (not quarantined) submission; is_latest marks the one that counts for its
-- unit and period: the latest dikirim_pada, and on a tie the one received first.
with submissions as (
    select * from {{ ref('stg_raw__submissions') }}
    where status in ('accepted', 'superseded')
)

select
    submission_id,
    unit_code,
    period,
    submitted_at,
    received_at,
    row_number() over (
        partition by unit_code, period
        order by submitted_at desc, received_at asc, submission_id
    ) = 1 as is_latest
from submissions
