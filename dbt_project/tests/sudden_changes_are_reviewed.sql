{{ config(
    severity='warn',
    meta={'description': 'No region changed from its previous period beyond the sudden-change thresholds (households, population, P0, recipients): a flagged change is a warning for the walidata to look at before approving.'}
) }}
select region_code, level, period, issue, previous_period, previous_value, current_value, change, threshold
from {{ ref('fct_data_quality') }}
where issue like 'sudden_change_%' and affected_rows > 0
