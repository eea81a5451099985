{# 100 · numerator / denominator, null when the denominator is 0 or null. #}
{% macro pct(numerator, denominator) -%}
    case when coalesce({{ denominator }}, 0) = 0 then null
         else 100.0 * ({{ numerator }}) / ({{ denominator }}) end
{%- endmacro %}
