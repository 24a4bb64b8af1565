-- Adds the calendar days of a range that date_dim does not have yet (idempotent).
create or replace procedure stg_mystore.sp_load_date_dim(
    p_start_date date,
    p_end_date date
)
as $$
declare
    v_rows integer;
begin
    call stg_mystore.sp_validate_parameters('HISTORY', p_start_date, p_end_date);
    if p_end_date - p_start_date >= 100000 then
        raise exception 'date range % to % is longer than 100000 days', p_start_date, p_end_date;
    end if;
    insert into dw_mystore.date_dim (
        date_key, day_of_week, day_name, day_of_month, day_of_year, week_of_year,
        month_number, month_name, quarter_number, year_number, weekend_flag
    )
    select
        days.day_date,
        cast(extract(dow from days.day_date) as smallint),
        trim(to_char(days.day_date, 'Day')),
        cast(extract(day from days.day_date) as smallint),
        cast(extract(doy from days.day_date) as smallint),
        cast(extract(week from days.day_date) as smallint),
        cast(extract(month from days.day_date) as smallint),
        trim(to_char(days.day_date, 'Month')),
        cast(extract(quarter from days.day_date) as smallint),
        cast(extract(year from days.day_date) as smallint),
        case when extract(dow from days.day_date) in (0, 6) then 'Y' else 'N' end
    from (
        select p_start_date + s.n as day_date
        from stg_mystore.v_integer_series as s
        where s.n <= p_end_date - p_start_date
    ) as days
    where not exists (
        select 1 from dw_mystore.date_dim as d where d.date_key = days.day_date
    );
    get diagnostics v_rows := row_count;
    raise info 'date_dim: % days added for % to %', v_rows, p_start_date, p_end_date;
end;
$$ language plpgsql;
