-- Loads the customers that changed since the high-water marks into customer_dim.
--   * customer attributes are SCD type 1: a newer customer record overwrites them on
--     every version of the customer, without a new version;
--   * address attributes are SCD type 2: a move (new address_id) or a changed address
--     record closes the current version at the change time (scd_end_date, flag 'N') and
--     opens a new current version starting at that time. A change dated at or before the
--     current version's start corrects that version in place instead;
--   * a customer or address record older than the one a version reflects is ignored, so
--     a late record never overwrites a newer one;
--   * gender and marital status are decoded to words (an unrecognised code is kept as
--     it came); birth_country is INITCAP'ed; NULLs become 'Unknown', -1 or 1000-01-01, a
--     missing state '#' and a missing gmt_offset -999 (-1 is a real UTC offset);
--   * a customer without customer_datetime is kept, dated 1000-01-01, so any dated
--     record of it supersedes it.
-- Each run reads a bounded window (high-water mark, newest row seen at start], and the
-- marks advance in the same transaction as the load, so a failure leaves both unchanged.
create or replace procedure stg_mystore.sp_load_customer_dim()
as $$
declare
    v_customer_mark timestamp;
    v_address_mark timestamp;
    v_customer_max timestamp;
    v_address_max timestamp;
    v_rows integer;
begin
    call stg_mystore.sp_return_high_water_mark('store_customer', v_customer_mark);
    call stg_mystore.sp_return_high_water_mark('store_customer_address', v_address_mark);
    select coalesce(max(etl_processing_datetime), v_customer_mark) into v_customer_max
    from stg_mystore.v_store_customer;
    select coalesce(max(etl_processing_datetime), v_address_mark) into v_address_max
    from stg_mystore.v_store_customer_address;

    delete from stg_mystore.wrk_customer_dim;

    -- 1. The customers whose record or whose address record is new, decoded.
    insert into stg_mystore.wrk_customer_dim (
        customer_id, customer_datetime, first_name, last_name, salutation, gender,
        birth_date, birth_country, email_address, marital_status, education_status,
        purchase_estimate, buy_potential, credit_rating, vehicle_count,
        income_band_lower_bound, income_band_upper_bound, start_date, address_id,
        address_datetime, street, city, county, state, zip, country, gmt_offset,
        location_type, action, change_datetime
    )
    select
        c.customer_id,
        coalesce(c.customer_datetime, cast('1000-01-01' as timestamp)),
        coalesce(c.first_name, 'Unknown'),
        coalesce(c.last_name, 'Unknown'),
        coalesce(c.salutation, 'Unknown'),
        case upper(c.gender)
            when 'M' then 'Male'
            when 'F' then 'Female'
            else coalesce(c.gender, 'Unknown')
        end,
        coalesce(c.birth_date, cast('1000-01-01' as date)),
        coalesce(initcap(c.birth_country), 'Unknown'),
        coalesce(c.email_address, 'Unknown'),
        case upper(c.marital_status)
            when 'S' then 'Single'
            when 'M' then 'Married'
            when 'D' then 'Divorced'
            when 'W' then 'Widowed'
            else coalesce(c.marital_status, 'Unknown')
        end,
        coalesce(c.education_status, 'Unknown'),
        coalesce(c.purchase_estimate, -1),
        coalesce(c.buy_potential, 'Unknown'),
        coalesce(c.credit_rating, 'Unknown'),
        coalesce(c.vehicle_count, -1),
        coalesce(c.lower_bound, -1),
        coalesce(c.upper_bound, -1),
        cast(coalesce(c.customer_datetime, cast('1000-01-01' as timestamp)) as date),
        coalesce(c.address_id, 'Unknown'),
        coalesce(a.address_datetime, cast('1000-01-01' as timestamp)),
        coalesce(a.street, 'Unknown'),
        coalesce(a.city, 'Unknown'),
        coalesce(a.county, 'Unknown'),
        coalesce(a.state, '#'),
        coalesce(a.zip, 'Unknown'),
        coalesce(a.country, 'Unknown'),
        coalesce(a.gmt_offset, -999),
        coalesce(a.location_type, 'Unknown'),
        'new',
        coalesce(c.customer_datetime, cast('1000-01-01' as timestamp))
    from stg_mystore.v_store_customer as c
    left join stg_mystore.v_store_customer_address as a
        on c.address_id = a.address_id
    where c.customer_id is not null
        and c.etl_processing_datetime <= v_customer_max
        and (
            c.etl_processing_datetime > v_customer_mark
            or a.etl_processing_datetime > v_address_mark
        );
    get diagnostics v_rows := row_count;
    raise info 'customer_dim: % changed customers staged', v_rows;

    -- 2. A customer record older than the current version's is late and stale: drop it.
    delete from stg_mystore.wrk_customer_dim
    using dw_mystore.customer_dim as d
    where d.customer_id = wrk_customer_dim.customer_id
        and d.scd_current_flag = 'Y'
        and d.customer_datetime > wrk_customer_dim.customer_datetime;

    -- 3. Decide per known customer: a new version, an in-place address fix, or type 1 only.
    update stg_mystore.wrk_customer_dim as w
    set
        action = case
            when w.address_id <> d.address_id
                and w.customer_datetime > d.scd_start_date then 'version'
            when w.address_id <> d.address_id then 'address'
            when w.address_datetime <= d.address_datetime then 'none'
            when w.street = d.street and w.city = d.city and w.county = d.county
                and w.state = d.state and w.zip = d.zip and w.country = d.country
                and w.gmt_offset = d.gmt_offset and w.location_type = d.location_type
                then 'address'
            when w.address_datetime > d.scd_start_date then 'version'
            else 'address'
        end,
        change_datetime = case
            when w.address_id <> d.address_id then w.customer_datetime
            else w.address_datetime
        end,
        start_date = d.start_date,
        current_customer_key = d.customer_key
    from dw_mystore.customer_dim as d
    where d.customer_id = w.customer_id
        and d.scd_current_flag = 'Y';

    -- 4. Close the current versions that a change supersedes, at the change time.
    update dw_mystore.customer_dim as d
    set
        scd_end_date = w.change_datetime,
        scd_current_flag = 'N',
        dw_update_date = sysdate
    from stg_mystore.wrk_customer_dim as w
    where d.customer_key = w.current_customer_key
        and w.action = 'version';
    get diagnostics v_rows := row_count;
    raise info 'customer_dim: % versions closed', v_rows;

    -- 5. Correct the address of current versions in place (no new version).
    update dw_mystore.customer_dim as d
    set
        address_id = w.address_id,
        address_date = cast(w.address_datetime as date),
        street = w.street,
        city = w.city,
        county = w.county,
        state = w.state,
        zip = w.zip,
        country = w.country,
        gmt_offset = w.gmt_offset,
        location_type = w.location_type,
        address_datetime = w.address_datetime,
        dw_update_date = sysdate
    from stg_mystore.wrk_customer_dim as w
    where d.customer_key = w.current_customer_key
        and w.action = 'address';

    -- 6. Open the new current versions: new customers and superseded ones.
    insert into dw_mystore.customer_dim (
        customer_id, first_name, last_name, salutation, gender, birth_date, birth_country,
        email_address, marital_status, education_status, purchase_estimate, buy_potential,
        credit_rating, vehicle_count, income_band_lower_bound, income_band_upper_bound,
        start_date, address_id, address_date, street, city, county, state, zip, country,
        gmt_offset, location_type, customer_datetime, address_datetime, scd_start_date,
        scd_end_date, scd_current_flag, dw_insert_date, dw_update_date
    )
    select
        w.customer_id, w.first_name, w.last_name, w.salutation, w.gender, w.birth_date,
        w.birth_country, w.email_address, w.marital_status, w.education_status,
        w.purchase_estimate, w.buy_potential, w.credit_rating, w.vehicle_count,
        w.income_band_lower_bound, w.income_band_upper_bound, w.start_date, w.address_id,
        cast(w.address_datetime as date), w.street, w.city, w.county, w.state, w.zip,
        w.country, w.gmt_offset, w.location_type, w.customer_datetime, w.address_datetime,
        w.change_datetime, cast('2999-12-31' as timestamp), 'Y', sysdate, sysdate
    from stg_mystore.wrk_customer_dim as w
    where w.action in ('new', 'version');
    get diagnostics v_rows := row_count;
    raise info 'customer_dim: % versions opened', v_rows;

    -- 7. Type 1: a newer customer record overwrites the attributes of every version.
    update dw_mystore.customer_dim as d
    set
        first_name = w.first_name,
        last_name = w.last_name,
        salutation = w.salutation,
        gender = w.gender,
        birth_date = w.birth_date,
        birth_country = w.birth_country,
        email_address = w.email_address,
        marital_status = w.marital_status,
        education_status = w.education_status,
        purchase_estimate = w.purchase_estimate,
        buy_potential = w.buy_potential,
        credit_rating = w.credit_rating,
        vehicle_count = w.vehicle_count,
        income_band_lower_bound = w.income_band_lower_bound,
        income_band_upper_bound = w.income_band_upper_bound,
        customer_datetime = w.customer_datetime,
        dw_update_date = sysdate
    from stg_mystore.wrk_customer_dim as w
    where d.customer_id = w.customer_id
        and d.customer_datetime < w.customer_datetime;
    get diagnostics v_rows := row_count;
    raise info 'customer_dim: % rows updated in place (type 1)', v_rows;

    call stg_mystore.sp_update_high_water_mark('store_customer', v_customer_max);
    call stg_mystore.sp_update_high_water_mark('store_customer_address', v_address_max);
end;
$$ language plpgsql;
