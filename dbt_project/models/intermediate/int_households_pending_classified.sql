-- As int_households_classified, for the households of pending submissions: revisions received
-- for an approved, locked period (orchestration/forum/signoff.py), held until an unlock.
with households as (
    {{ households_of_submissions(
        ref('stg_raw__households'), ref('stg_raw__submissions'), "submissions.status = 'pending'"
    ) }}
),

{{ classify_households('households', ref('stg_reference__poverty_lines')) }}

select * from classified
