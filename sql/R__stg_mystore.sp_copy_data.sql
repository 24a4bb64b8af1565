-- History load, step 1 (Redshift only): copies the sales of a date range from parquet on
-- S3 into stg_mystore.store_sale, one COPY per day from <prefix>/sale_date=YYYY-MM-DD/.
-- The files hold the clean store_sale columns in contract order. The range is deleted
-- first, so a rerun replaces it. The prefix and role are validated before use and
-- quoted with quote_literal; nothing else is spliced into the COPY text.
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
begin
    call stg_mystore.sp_validate_parameters('HISTORY', p_start_date, p_end_date);
    if p_s3_prefix is null or p_s3_prefix !~ '^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9_.=/-]*)?$' then
        raise exception 's3_prefix % is not valid: expected s3://bucket/prefix (letters, digits and _ . = / - only)',
            coalesce('''' || p_s3_prefix || '''', 'NULL');
    end if;
    if p_iam_role is null or p_iam_role !~ '^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$' then
        raise exception 'iam_role % is not valid: expected arn:aws:iam::<account>:role/<name>',
            coalesce('''' || p_iam_role || '''', 'NULL');
    end if;
    delete from stg_mystore.store_sale
    where sale_date between p_start_date and p_end_date;
    v_day := p_start_date;
    while v_day <= p_end_date loop
        v_path := rtrim(p_s3_prefix, '/') || '/sale_date=' || to_char(v_day, 'YYYY-MM-DD') || '/';
        execute 'copy stg_mystore.store_sale from ' || quote_literal(v_path)
            || ' iam_role ' || quote_literal(p_iam_role) || ' format as parquet';
        raise info 'copied %', v_path;
        v_day := v_day + 1;
    end loop;
end;
$$ language plpgsql;
