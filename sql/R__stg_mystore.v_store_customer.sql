-- The clean customers, one row per customer_id (the Hudi table is upserted by key; the
-- row_number guards against a source that is not). A late-binding view, as Redshift
-- requires for views over external tables.
create or replace view stg_mystore.v_store_customer as
select
    customer_id,
    customer_datetime,
    first_name,
    last_name,
    salutation,
    gender,
    birth_date,
    birth_country,
    email_address,
    marital_status,
    education_status,
    lower_bound,
    upper_bound,
    purchase_estimate,
    buy_potential,
    credit_rating,
    vehicle_count,
    address_id,
    processing_datetime,
    etl_processing_datetime,
    customer_date
from (
    select
        c.*,
        row_number() over (
            partition by c.customer_id
            order by c.customer_datetime desc nulls last, c.etl_processing_datetime desc
        ) as version_rank
    from ext_clean_mystore.store_customer as c
) as ranked
where version_rank = 1
with no schema binding;
