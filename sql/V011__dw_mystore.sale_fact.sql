-- Sales, one row per ticket line. Keyed by ticket_id + item_id + sold_date; each row
-- points at the customer version valid at the time of the sale (-1 when unknown).
create table if not exists dw_mystore.sale_fact (
    sold_date_key date not null encode raw,
    sold_time_key integer not null encode az64,
    sold_date date not null encode az64,
    customer_key bigint not null encode az64,
    ticket_id bigint not null encode az64,
    item_id integer not null encode az64,
    store_id varchar(16) not null encode zstd,
    promo_id varchar(16) not null encode zstd,
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
    dw_insert_date timestamp not null encode az64,
    dw_update_date timestamp not null encode az64,
    primary key (ticket_id, item_id, sold_date)
)
distkey (ticket_id)
compound sortkey (sold_date_key, customer_key);
