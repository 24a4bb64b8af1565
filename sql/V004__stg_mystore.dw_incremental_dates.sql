-- One high-water mark per source table: the newest etl_processing_datetime loaded.
-- Procedures advance a mark only in the transaction that loaded the rows below it.
create table if not exists stg_mystore.dw_incremental_dates (
    source_table_name varchar(128) not null encode zstd,
    start_date timestamp not null encode az64,
    primary key (source_table_name)
)
diststyle all;

insert into stg_mystore.dw_incremental_dates (source_table_name, start_date)
values
('store_customer', '1900-01-01 00:00:00'),
('store_customer_address', '1900-01-01 00:00:00'),
('store_sale', '1900-01-01 00:00:00');
