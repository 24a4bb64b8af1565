-- The clean addresses, one row per address_id (see v_store_customer).
create or replace view stg_mystore.v_store_customer_address as
select
    address_id,
    address_datetime,
    street,
    city,
    zip,
    county,
    state,
    country,
    gmt_offset,
    location_type,
    processing_datetime,
    etl_processing_datetime,
    address_date
from (
    select
        a.*,
        row_number() over (
            partition by a.address_id
            order by a.address_datetime desc, a.etl_processing_datetime desc
        ) as version_rank
    from ext_clean_mystore.store_customer_address as a
) as ranked
where version_rank = 1
with no schema binding;
