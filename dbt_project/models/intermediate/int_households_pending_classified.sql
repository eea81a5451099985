-- As int_households_classified, for the households of pending submissions: revisions received
-- for an approved, locked period (orchestration/signoff.py), held until an unlock.
with households as (
    {{ households_of_submissions("submissions.status = 'pending'") }}
),

{{ classify_households('households') }}

select * from classified
