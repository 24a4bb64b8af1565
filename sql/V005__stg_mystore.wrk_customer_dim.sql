-- Work table of sp_load_customer_dim: the changed customers of one run, already decoded,
-- with the action each one gets (new, version, address, none) and the key of its current
-- version. Emptied at each run.
create table if not exists stg_mystore.wrk_customer_dim (
    customer_id varchar(16) not null encode zstd,
    customer_datetime timestamp not null encode az64,
    first_name varchar(64) encode zstd,
    last_name varchar(64) encode zstd,
    salutation varchar(16) encode zstd,
    gender varchar(16) encode zstd,
    birth_date date encode az64,
    birth_country varchar(64) encode zstd,
    email_address varchar(128) encode zstd,
    marital_status varchar(16) encode zstd,
    education_status varchar(32) encode zstd,
    purchase_estimate integer encode az64,
    buy_potential varchar(16) encode zstd,
    credit_rating varchar(16) encode zstd,
    vehicle_count integer encode az64,
    income_band_lower_bound integer encode az64,
    income_band_upper_bound integer encode az64,
    start_date date encode az64,
    address_id varchar(16) encode zstd,
    address_datetime timestamp encode az64,
    street varchar(128) encode zstd,
    city varchar(64) encode zstd,
    county varchar(64) encode zstd,
    state varchar(32) encode zstd,
    zip varchar(16) encode zstd,
    country varchar(64) encode zstd,
    gmt_offset decimal(5, 2) encode az64,
    location_type varchar(32) encode zstd,
    action varchar(16) not null encode zstd,
    change_datetime timestamp encode az64,
    current_customer_key bigint encode az64
)
backup no
diststyle all;
