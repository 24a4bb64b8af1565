-- Work table of sp_load_sale_fact: one row per sale key of one run. Emptied at each run.
create table if not exists stg_mystore.wrk_sale_fact (
    ticket_id bigint not null encode az64,
    item_id integer not null encode az64,
    sale_datetime timestamp not null encode az64,
    customer_id varchar(16) encode zstd,
    store_id varchar(16) encode zstd,
    promo_id varchar(16) encode zstd,
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
    net_profit decimal(7, 2) encode az64
)
backup no
distkey (ticket_id)
sortkey (ticket_id, item_id);
