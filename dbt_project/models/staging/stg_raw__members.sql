with source as (
    select * from {{ source('raw', 'members') }}
),

renamed as (
    select
        -- keys
        submission_id,
        line,
        person_key,
        household_key,
        -- person
        sex,
        nik_sex,
        birth_date,
        age_years,
        is_working_age,
        -- labour
        employment_status,
        industry_section
    from source
)

select * from renamed
