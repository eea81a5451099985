{#- The poverty rules, once: used for the published figures (int_households_classified,
    fct_poverty) and for what pending revisions would change (fct_pending_revisions). -#}

{#- CTEs ``lines``, ``line_per_regency_period`` and ``classified``: each household of the
    relation ``households`` (with regency_code, period, period_year) with its regency's poverty
    line from ``poverty_lines`` (the period's year, or the latest earlier year in the reference),
    poverty flags and the Foster-Greer-Thorbecke terms. (Relations are arguments, not refs, so
    that ``poverty_rules_sql`` can render the rules anywhere.) -#}
{% macro classify_households(households, poverty_lines) -%}
lines as (
    select * from {{ poverty_lines }}
),

line_per_regency_period as (
    select
        periods.regency_code,
        periods.period,
        lines.line_year,
        lines.poverty_line,
        lines.extreme_poverty_line
    from (select distinct regency_code, period, period_year from {{ households }}) as periods
    inner join lines
        on lines.regency_code = periods.regency_code
        and lines.line_year <= periods.period_year
    qualify row_number() over (
        partition by periods.regency_code, periods.period order by lines.line_year desc
    ) = 1
),

classified as (
    select
        *,
        poverty_gap * poverty_gap as poverty_gap_squared
    from (
        select
            households.submission_id,
            households.household_key,
            households.unit_code,
            households.period,
            households.village_code,
            households.regency_code,
            households.household_size,
            households.expenditure_per_capita,
            line.poverty_line,
            line.line_year as poverty_line_year,
            line.extreme_poverty_line,
            households.expenditure_per_capita < line.poverty_line as is_poor,
            households.expenditure_per_capita < line.extreme_poverty_line as is_extreme_poor,
            greatest(
                0.0, (line.poverty_line - households.expenditure_per_capita) / line.poverty_line
            ) as poverty_gap
        from {{ households }} as households
        left join line_per_regency_period as line
            on households.regency_code = line.regency_code
            and households.period = line.period
    )
)
{%- endmacro %}


{#- The household rows (``households``) of the submissions (``submissions``) matching
    ``condition``, with what classify_households needs. -#}
{% macro households_of_submissions(households, submissions, condition) -%}
    select
        households.*,
        submissions.unit_code,
        submissions.period,
        cast(left(submissions.period, 4) as integer) as period_year,
        substr(households.village_code, 1, 5) as regency_code
    from {{ households }} as households
    inner join {{ submissions }} as submissions
        on households.submission_id = submissions.submission_id
    where {{ condition }}
{%- endmacro %}


{#- P0, P1, P2 and extreme poverty of every region (every level) above the classified
    households of ``households``, from the household rows (never by averaging rates). -#}
{% macro poverty_figures(households) -%}
    select
        rolled.region_code,
        rolled.level,
        rolled.period,
        rolled.households::bigint as households,
        rolled.population::bigint as population,
        rolled.poverty_line::bigint as poverty_line,
        rolled.poverty_line_year::integer as poverty_line_year,
        rolled.poor_population::bigint as poor_population,
        {{ pct('rolled.poor_population', 'rolled.population') }}::double as poverty_rate,
        {{ pct('rolled.weighted_gap', 'rolled.population') }}::double as poverty_gap_index,
        {{ pct('rolled.weighted_gap_squared', 'rolled.population') }}::double
            as poverty_severity_index,
        rolled.extreme_poor_population::bigint as extreme_poor_population,
        {{ pct('rolled.extreme_poor_population', 'rolled.population') }}::double
            as extreme_poverty_rate
    from (
        select
            bridge.region_code,
            bridge.level,
            households.period,
            count(*) as households,
            sum(households.household_size) as population,
            -- one regency line below province level; none for the province as a whole
            case when bridge.level <> 'province' then max(households.poverty_line) end
                as poverty_line,
            case when bridge.level <> 'province' then max(households.poverty_line_year) end
                as poverty_line_year,
            sum(case when households.is_poor then households.household_size else 0 end)
                as poor_population,
            sum(households.household_size * households.poverty_gap) as weighted_gap,
            sum(households.household_size * households.poverty_gap_squared)
                as weighted_gap_squared,
            sum(case when households.is_extreme_poor then households.household_size else 0 end)
                as extreme_poor_population
        from {{ households }} as households
        inner join {{ ref('int_villages_rolled_up') }} as bridge
            on households.village_code = bridge.village_code
        group by bridge.region_code, bridge.level, households.period
    ) as rolled
{%- endmacro %}


{#- The SQL these rules generate, as text: part of int_households_classified's build digest
    (macros/incremental.sql), so that a change to a rule here rebuilds the rows built under the
    old one, as a change to the model's own code does. -#}
{% macro poverty_rules_sql() -%}
    {{ return(
        households_of_submissions('households', 'submissions', 'true')
        ~ classify_households('households', 'poverty_lines')
    ) }}
{%- endmacro %}
