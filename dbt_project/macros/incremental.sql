{#
  Incremental by submission. The person- and household-level intermediate models keep the rows
  of every latest submission; a nightly run adds the rows of submissions that became latest and
  deletes those of submissions that stopped being latest (superseded by a revision), so a
  re-submission does not rebuild every unit, and a month's data is built once, not every night.

  Each row carries ``build_digest``: a digest of the model's code and of everything upstream of
  it in the graph (models' code, seeds' contents: the poverty lines) plus the given extra values
  (the vars the model reads, the SQL of the rules it takes from macros: ``poverty_rules_sql``).
  Rows built under another digest are deleted and rebuilt, so a changed poverty line, a changed
  model or a changed poverty rule rebuilds in full without anyone remembering
  ``--full-refresh``. A change to another macro the models call is not seen: pass
  ``--full-refresh`` (``satudata run --full-refresh``).
#}

{% macro build_digest(extra=[]) -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {#- a unit test renders the model without the project's graph: any digest will do there -#}
    {%- set nodes = graph.get('nodes') or {} -%}
    {%- set ids = [model.unique_id] -%}
    {#- breadth-first over the ancestors: the loop sees the ids appended while it runs -#}
    {%- for id in ids -%}
        {%- for parent in ((nodes.get(id) or {}).get('depends_on') or {}).get('nodes') or [] -%}
            {%- if parent not in ids -%}
                {%- do ids.append(parent) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- set parts = [] -%}
    {%- for id in ids | sort -%}
        {%- set checksum = (nodes.get(id) or {}).get('checksum') or {} -%}
        {%- do parts.append(id ~ '=' ~ (checksum.get('checksum') or '')) -%}
    {%- endfor -%}
    {%- for value in extra -%}
        {%- do parts.append('extra=' ~ value) -%}
    {%- endfor -%}
    {{ return(local_md5(parts | join('|'))) }}
{%- endmacro %}


{#- The pre-hook: drop the rows of submissions that are no longer in ``latest`` (rows matching
    ``condition``), and every row built under another digest; the model then adds the latest
    submissions it does not hold. -#}
{% macro delete_outdated_submissions(latest, condition, extra=[]) -%}
    {%- if is_incremental() -%}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
        {%- if 'build_digest' not in columns -%}
            {#- built before this model was incremental: rebuild it in full (the schema change
                adds the column) -#}
            delete from {{ this }}
        {%- else -%}
            delete from {{ this }}
            where submission_id not in (select submission_id from {{ latest }} where {{ condition }})
                or build_digest is distinct from '{{ build_digest(extra) }}'
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{#- In the model's SQL: only submissions the table does not hold yet. -#}
{% macro submissions_not_built(column) -%}
    {%- if is_incremental() -%}
        {{ column }} not in (select distinct submission_id from {{ this }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
