{#- The dotted-code hierarchy: ``ancestor`` is ``code`` or lies above it (64.74 covers
    64.74.01 and 64.74.01.1001). The same rule as orchestration/ingest/contract.py's covers_sql. -#}
{% macro region_covers(ancestor, code) -%}
    ({{ code }} = {{ ancestor }} or starts_with({{ code }}, {{ ancestor }} || '.'))
{%- endmacro %}


{#- A fact's approval columns, from int_regions_approved joined as ``alias``. -#}
{% macro approval_columns(alias) -%}
    case when {{ alias }}.region_code is null then 'provisional' else 'approved' end::varchar
        as approval_status,
    {{ alias }}.approved_at::timestamptz as approved_at,
    {{ alias }}.approved_by::varchar as approved_by,
    {{ alias }}.approved_region_code::varchar as approved_region_code
{%- endmacro %}


{#- Sudden-change thresholds: a change from the region's previous period beyond these is
    flagged (fct_data_quality, a warning check, the review reports) before anyone signs.
    Counts: relative change in percent; rates: change in percentage points. Each can be set
    with the environment variable SATUDATA_SUDDEN_CHANGE_<MEASURE> (docs/operations.md). -#}
{% macro sudden_change_thresholds() -%}
    {%- set defaults = {
        'households': 25,
        'population': 25,
        'poverty_rate': 3,
        'recipient_households': 40,
    } -%}
    {%- set found = {} -%}
    {%- for measure, default in defaults.items() -%}
        {%- do found.update({measure: env_var('SATUDATA_SUDDEN_CHANGE_' ~ measure | upper, default | string) | float}) -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}
