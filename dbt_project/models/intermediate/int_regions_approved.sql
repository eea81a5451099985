-- One row per region and period whose figures are approved: the region itself was approved, or
-- one above it (a kecamatan of an approved Kota Bontang). Where several approvals cover a
-- region, the most specific one is shown (Kota Bontang's before the province's).
with approvals as (
    select
        region_code as approved_region_code,
        period,
        decided_at as approved_at,
        decided_by as approved_by
    from {{ ref('stg_raw__signoffs_in_force') }}
    where action = 'approve'
),

regions as (
    select region_code from {{ ref('int_regions_flattened') }}
)

select
    regions.region_code,
    approvals.period,
    approvals.approved_region_code,
    approvals.approved_at,
    approvals.approved_by
from regions
inner join approvals on {{ region_covers('approvals.approved_region_code', 'regions.region_code') }}
qualify row_number() over (
    partition by regions.region_code, approvals.period
    order by length(approvals.approved_region_code) desc
) = 1
