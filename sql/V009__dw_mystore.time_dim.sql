-- One row per second of the day (86,400 rows), filled by sp_load_time_dim.
create table if not exists dw_mystore.time_dim (
    time_key integer not null encode raw,
    time_value char(8) not null encode zstd,
    hour smallint not null encode az64,
    minute smallint not null encode az64,
    second smallint not null encode az64,
    am_pm char(2) not null encode zstd,
    shift varchar(8) not null encode zstd,
    sub_shift varchar(12) not null encode zstd,
    meal_time varchar(12) not null encode zstd,
    primary key (time_key)
)
diststyle all
sortkey (time_key);
