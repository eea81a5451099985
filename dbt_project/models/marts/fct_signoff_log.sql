-- The Forum Satu Data's decisions, as recorded: published so that anyone can see who vouched for
-- which figures, and who unlocked them and why.
select
    decision_id::varchar as decision_id,
    previous_id::varchar as previous_id,
    decided_at::timestamptz as decided_at,
    action::varchar as action,
    region_code::varchar as region_code,
    period::varchar as period,
    decided_by::varchar as decided_by,
    note::varchar as note,
    publication_id::varchar as publication_id,
    submission_ids::varchar as submission_ids,
    figures_digest::varchar as figures_digest
from {{ ref('stg_raw__signoffs') }}
