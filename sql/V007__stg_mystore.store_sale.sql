-- History staging: sp_copy_data copies parquet for a date range here (columns in the
-- clean store_sale order); sp_load_sale_fact('HISTORY', ...) loads the facts from it.
create table if not exists stg_mystore.store_sale (
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
    etl_processing_datetime timestamp encode az64,
    sale_date date not null encode raw
)
backup no
distkey (ticket_id)
sortkey (sale_date);
