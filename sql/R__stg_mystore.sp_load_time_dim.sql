-- Adds the seconds of the day that time_dim does not have yet (idempotent; 86,400 rows).
create or replace procedure stg_mystore.sp_load_time_dim()
as $$
declare
    v_rows integer;
begin
    insert into dw_mystore.time_dim (
        time_key, time_value, hour, minute, second, am_pm, shift, sub_shift, meal_time
    )
    select
        t.time_key,
        lpad(cast(t.h as varchar), 2, '0') || ':' || lpad(cast(t.m as varchar), 2, '0')
            || ':' || lpad(cast(t.s as varchar), 2, '0'),
        t.h,
        t.m,
        t.s,
        case when t.h < 12 then 'AM' else 'PM' end,
        case when t.h < 8 then 'third' when t.h < 16 then 'first' else 'second' end,
        case
            when t.h < 6 then 'night'
            when t.h < 12 then 'morning'
            when t.h < 18 then 'afternoon'
            else 'evening'
        end,
        case
            when t.h between 6 and 8 then 'breakfast'
            when t.h between 11 and 13 then 'lunch'
            when t.h between 17 and 20 then 'dinner'
            else 'none'
        end
    from (
        select
            s.n as time_key,
            s.n / 3600 as h,
            (s.n % 3600) / 60 as m,
            s.n % 60 as s
        from stg_mystore.v_integer_series as s
        where s.n < 86400
    ) as t
    where not exists (
        select 1 from dw_mystore.time_dim as d where d.time_key = t.time_key
    );
    get diagnostics v_rows := row_count;
    raise info 'time_dim: % seconds added', v_rows;
end;
$$ language plpgsql;
