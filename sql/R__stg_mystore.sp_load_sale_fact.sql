-- Loads sales into sale_fact.
--   INCREMENTAL (start and end NULL): the clean sales newer than the high-water mark;
--   HISTORY (start <= end): the sales of stg_mystore.store_sale in that date range; a
--   range with none fails the load (a backfill must never report success for nothing).
-- Each sale points at the customer version valid at the time of the sale; a sale before
-- the customer's first version points at that first version; an unknown customer gives
-- -1. Rows are deleted then inserted on the source key (ticket_id, item_id), so a reload
-- replaces instead of duplicating, also when a corrected sale moved to another day.
-- The incremental read prunes on the sale_date partition: a new sale is dated at most
-- v_late_days days before the newest sale already loaded, so only the partitions from
-- there on are read (Spectrum cost stays one night's, not history's). Business dates, not
-- the processing clock, so a replayed or backfilled night is read too. A sale later than
-- that is not loaded; check_sales_reconciled reports it.
create or replace procedure stg_mystore.sp_load_sale_fact(
    p_load_type varchar,
    p_start_date date,
    p_end_date date
)
as $$
declare
    v_mark timestamp;
    v_max timestamp;
    v_first_day date;
    v_last_day date;
    v_seconds integer;
    v_rows integer;
    v_late_days integer := 7;
    v_from date;
    v_load_kind varchar(16);
    v_first_ticket bigint;
    v_first_item integer;
    v_first_time timestamp;
    v_last_ticket bigint;
    v_last_item integer;
    v_last_time timestamp;
begin
    v_load_kind := lower(p_load_type);
    call stg_mystore.sp_validate_parameters(p_load_type, p_start_date, p_end_date);
    delete from stg_mystore.wrk_sale_fact;

    -- 1. Stage one row per sale key, the latest version of each.
    if p_load_type = 'INCREMENTAL' then
        call stg_mystore.sp_return_high_water_mark('store_sale', v_mark);
        select coalesce(max(sold_date_key), cast('1900-01-01' as date)) into v_from
        from dw_mystore.sale_fact;
        v_from := v_from - v_late_days;
        select coalesce(max(etl_processing_datetime), v_mark) into v_max
        from ext_clean_mystore.store_sale
        where sale_date >= v_from;
        insert into stg_mystore.wrk_sale_fact (
            ticket_id, item_id, sale_datetime, customer_id, store_id, promo_id, quantity,
            wholesale_cost, list_price, sales_price, ext_discount_amt, ext_sales_price,
            ext_wholesale_cost, ext_list_price, ext_tax, coupon_amt, net_paid,
            net_paid_inc_tax, net_profit
        )
        select
            ticket_id, item_id, sale_datetime, customer_id, store_id, promo_id, quantity,
            wholesale_cost, list_price, sales_price, ext_discount_amt, ext_sales_price,
            ext_wholesale_cost, ext_list_price, ext_tax, coupon_amt, net_paid,
            net_paid_inc_tax, net_profit
        from (
            select
                s.*,
                row_number() over (
                    partition by s.ticket_id, s.item_id
                    order by s.sale_datetime desc, s.etl_processing_datetime desc
                ) as version_rank
            from ext_clean_mystore.store_sale as s
            where s.sale_date >= v_from
                and s.etl_processing_datetime > v_mark
                and s.etl_processing_datetime <= v_max
        ) as ranked
        where version_rank = 1;
    else
        insert into stg_mystore.wrk_sale_fact (
            ticket_id, item_id, sale_datetime, customer_id, store_id, promo_id, quantity,
            wholesale_cost, list_price, sales_price, ext_discount_amt, ext_sales_price,
            ext_wholesale_cost, ext_list_price, ext_tax, coupon_amt, net_paid,
            net_paid_inc_tax, net_profit
        )
        select
            ticket_id, item_id, sale_datetime, customer_id, store_id, promo_id, quantity,
            wholesale_cost, list_price, sales_price, ext_discount_amt, ext_sales_price,
            ext_wholesale_cost, ext_list_price, ext_tax, coupon_amt, net_paid,
            net_paid_inc_tax, net_profit
        from (
            select
                s.*,
                row_number() over (
                    partition by s.ticket_id, s.item_id
                    order by s.sale_datetime desc, s.etl_processing_datetime desc
                ) as version_rank
            from stg_mystore.store_sale as s
            where s.sale_date between p_start_date and p_end_date
        ) as ranked
        where version_rank = 1;
    end if;
    get diagnostics v_rows := row_count;
    raise info 'sale_fact: % % sales staged', v_rows, v_load_kind;
    if p_load_type = 'HISTORY' and v_rows = 0 then
        -- A backfill that loads nothing is a wrong range or a source not staged: fail it
        -- (rolling back the customers loaded before) instead of reporting success.
        raise exception 'HISTORY load of % to %: stg_mystore.store_sale holds no sales in that range, so there is nothing to load; stage the range first (sp_stage_store_sale from the clean table, or sp_copy_data from S3) and check that its source has sales on those dates',
            p_start_date, p_end_date;
    end if;

    -- 2. The calendar and clock the facts point at.
    select min(cast(sale_datetime as date)), max(cast(sale_datetime as date))
    into v_first_day, v_last_day
    from stg_mystore.wrk_sale_fact;
    if v_last_day - v_first_day >= 100000 then
        -- A sale dated centuries off (a poison pill) would fail every night with a message
        -- naming no row; name both ends of the span, one of which is the bad row.
        select ticket_id, item_id, sale_datetime
        into v_first_ticket, v_first_item, v_first_time
        from stg_mystore.wrk_sale_fact
        order by sale_datetime, ticket_id, item_id
        limit 1;
        select ticket_id, item_id, sale_datetime
        into v_last_ticket, v_last_item, v_last_time
        from stg_mystore.wrk_sale_fact
        order by sale_datetime desc, ticket_id, item_id
        limit 1;
        raise exception 'sales to load span % to %, more than 100000 days: earliest sale ticket_id % item_id % at %, latest sale ticket_id % item_id % at %; correct or remove the bad one in the clean store_sale table',
            v_first_day, v_last_day, v_first_ticket, v_first_item, v_first_time,
            v_last_ticket, v_last_item, v_last_time;
    end if;
    if v_first_day is not null then
        call stg_mystore.sp_load_date_dim(v_first_day, v_last_day);
    end if;
    select count(*) into v_seconds from dw_mystore.time_dim;
    if v_seconds < 86400 then
        call stg_mystore.sp_load_time_dim();
    end if;

    -- 3. Replace the facts of the staged keys.
    delete from dw_mystore.sale_fact
    using stg_mystore.wrk_sale_fact as w
    where sale_fact.ticket_id = w.ticket_id
        and sale_fact.item_id = w.item_id;
    get diagnostics v_rows := row_count;
    raise info 'sale_fact: % rows replaced', v_rows;

    insert into dw_mystore.sale_fact (
        sold_date_key, sold_time_key, sold_date, customer_key, ticket_id, item_id,
        store_id, promo_id, quantity, wholesale_cost, list_price, sales_price,
        ext_discount_amt, ext_sales_price, ext_wholesale_cost, ext_list_price, ext_tax,
        coupon_amt, net_paid, net_paid_inc_tax, net_profit, dw_insert_date, dw_update_date
    )
    select
        cast(w.sale_datetime as date),
        cast(date_part('hour', w.sale_datetime) as integer) * 3600
        + cast(date_part('minute', w.sale_datetime) as integer) * 60
        + cast(floor(date_part('second', w.sale_datetime)) as integer),
        cast(w.sale_datetime as date),
        coalesce(valid.customer_key, earliest.customer_key, -1),
        w.ticket_id,
        w.item_id,
        coalesce(w.store_id, 'Unknown'),
        coalesce(w.promo_id, 'Unknown'),
        w.quantity,
        w.wholesale_cost,
        w.list_price,
        w.sales_price,
        w.ext_discount_amt,
        w.ext_sales_price,
        w.ext_wholesale_cost,
        w.ext_list_price,
        w.ext_tax,
        w.coupon_amt,
        w.net_paid,
        w.net_paid_inc_tax,
        w.net_profit,
        sysdate,
        sysdate
    from stg_mystore.wrk_sale_fact as w
    left join dw_mystore.customer_dim as valid
        on w.customer_id = valid.customer_id
            and w.sale_datetime >= valid.scd_start_date
            and w.sale_datetime < valid.scd_end_date
            and valid.customer_key <> -1
    left join (
        select
            customer_id,
            customer_key,
            row_number() over (
                partition by customer_id order by scd_start_date
            ) as version_number
        from dw_mystore.customer_dim
        where customer_key <> -1
    ) as earliest
        on w.customer_id = earliest.customer_id
            and earliest.version_number = 1;
    get diagnostics v_rows := row_count;
    raise info 'sale_fact: % rows inserted', v_rows;

    if p_load_type = 'INCREMENTAL' then
        call stg_mystore.sp_update_high_water_mark('store_sale', v_max);
    end if;
end;
$$ language plpgsql;
