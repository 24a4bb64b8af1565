-- Work table of sp_copy_data: one day of parquet as Spark writes it. COPY from columnar
-- files matches columns by position and count, and a partitioned parquet file leaves its
-- partition column (sale_date) out, so the day is copied here and then moved into
-- stg_mystore.store_sale with its sale_date. Emptied for each day.
create table if not exists stg_mystore.wrk_store_sale_copy (
    ticket_id bigint not null encode az64,
    item_id integer not null encode az64,
    sale_datetime timestamp not null encode az64,
    quantity integer encode az64,
    wholesale_cost decimal(7, 2) encode az64,
    list_price decimal(7, 2) encode az64,
    sales_price decimal(7, 2) encode az64,
    ext_discount_amt decimal(7, 2) encode az64,
    ext_sales_price decimal(7, 2) encode az64,
    ext_wholesale_cost decimal(7, 2) encode az64,
    ext_list_price decimal(7, 2) encode az64,
    ext_tax decimal(7, 2) encode az64,
    coupon_amt decimal(7, 2) encode az64,
    net_paid decimal(7, 2) encode az64,
    net_paid_inc_tax decimal(7, 2) encode az64,
    net_profit decimal(7, 2) encode az64,
    customer_id varchar(16) encode zstd,
    store_id varchar(16) encode zstd,
    promo_id varchar(16) encode zstd,
    processing_datetime timestamp encode az64,
    etl_processing_datetime timestamp encode az64
)
backup no
diststyle even;
