-- One row per calendar day; filled on demand by sp_load_date_dim for the days sales need.
create table if not exists dw_mystore.date_dim (
    date_key date not null encode raw,
    day_of_week smallint not null encode az64,
    day_name varchar(9) not null encode zstd,
    day_of_month smallint not null encode az64,
    day_of_year smallint not null encode az64,
    week_of_year smallint not null encode az64,
    month_number smallint not null encode az64,
    month_name varchar(9) not null encode zstd,
    quarter_number smallint not null encode az64,
    year_number smallint not null encode az64,
    weekend_flag char(1) not null encode zstd,
    primary key (date_key)
)
diststyle all
sortkey (date_key);
