-- History load, step 1 (Redshift only): copies the sales of a date range from parquet on
-- S3 into stg_mystore.store_sale, one COPY per day from <prefix>/sale_date=YYYY-MM-DD/.
-- The files hold the clean store_sale columns in contract order without the partition
-- column sale_date (Spark leaves it out of partitioned parquet, and COPY from parquet
-- matches columns by position and count): each day is copied into
-- stg_mystore.wrk_store_sale_copy and moved to stg_mystore.store_sale with its sale_date.
-- The range is deleted first, so a rerun replaces it. The prefix and role are validated
-- before use and quoted with quote_literal; nothing else is spliced into the COPY text.
-- SECURITY DEFINER: the ETL role calls it without owning the staging tables.
create or replace procedure stg_mystore.sp_copy_data(
    p_start_date date,
    p_end_date date,
    p_s3_prefix varchar,
    p_iam_role varchar
)
as $$
declare
    v_day date;
    v_path varchar(1024);
    v_shown varchar(2100);
begin
    call stg_mystore.sp_validate_parameters('HISTORY', p_start_date, p_end_date);
    if p_s3_prefix is null or p_s3_prefix !~ '^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9_.=/-]*)?$' then
        v_shown := coalesce('''' || p_s3_prefix || '''', 'NULL');
        raise exception 's3_prefix % is not valid: expected s3://bucket/prefix (letters, digits and _ . = / - only)',
            v_shown;
    end if;
    if p_iam_role is null or p_iam_role !~ '^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$' then
        v_shown := coalesce('''' || p_iam_role || '''', 'NULL');
        raise exception 'iam_role % is not valid: expected arn:aws:iam::<account>:role/<name>',
            v_shown;
    end if;
    delete from stg_mystore.store_sale
    where sale_date between p_start_date and p_end_date;
    v_day := p_start_date;
    while v_day <= p_end_date loop
        v_path := rtrim(p_s3_prefix, '/') || '/sale_date=' || to_char(v_day, 'YYYY-MM-DD') || '/';
        delete from stg_mystore.wrk_store_sale_copy;
        execute 'copy stg_mystore.wrk_store_sale_copy from ' || quote_literal(v_path)
            || ' iam_role ' || quote_literal(p_iam_role) || ' format as parquet';
        insert into stg_mystore.store_sale (
            ticket_id, item_id, sale_datetime, quantity, wholesale_cost, list_price,
            sales_price, ext_discount_amt, ext_sales_price, ext_wholesale_cost,
            ext_list_price, ext_tax, coupon_amt, net_paid, net_paid_inc_tax, net_profit,
            customer_id, store_id, promo_id, processing_datetime, etl_processing_datetime,
            sale_date
        )
        select
            ticket_id, item_id, sale_datetime, quantity, wholesale_cost, list_price,
            sales_price, ext_discount_amt, ext_sales_price, ext_wholesale_cost,
            ext_list_price, ext_tax, coupon_amt, net_paid, net_paid_inc_tax, net_profit,
            customer_id, store_id, promo_id, processing_datetime, etl_processing_datetime,
            v_day
        from stg_mystore.wrk_store_sale_copy;
        raise info 'copied %', v_path;
        v_day := v_day + 1;
    end loop;
end;
$$ language plpgsql
security definer
set search_path = stg_mystore;

revoke execute on procedure stg_mystore.sp_copy_data(date, date, varchar, varchar) from public;
grant execute on procedure stg_mystore.sp_copy_data(date, date, varchar, varchar)
to role mystore_etl;
