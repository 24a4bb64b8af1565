-- Checks a load's parameters before anything is read or written, so a wrong call fails
-- with a message that names the bad value and what is allowed.
create or replace procedure stg_mystore.sp_validate_parameters(
    p_load_type varchar,
    p_start_date date,
    p_end_date date
)
-- Redshift's RAISE takes only variables after the format, so the values shown are
-- computed into variables first.
as $$
declare
    v_load_type varchar(258);
    v_start varchar(16);
    v_end varchar(16);
begin
    v_load_type := coalesce('''' || p_load_type || '''', 'NULL');
    v_start := coalesce(cast(p_start_date as varchar), 'NULL');
    v_end := coalesce(cast(p_end_date as varchar), 'NULL');
    if p_load_type is null or p_load_type not in ('HISTORY', 'INCREMENTAL') then
        raise exception 'load_type % is not valid: expected HISTORY or INCREMENTAL', v_load_type;
    end if;
    if p_load_type = 'INCREMENTAL' and (p_start_date is not null or p_end_date is not null) then
        raise exception 'INCREMENTAL loads take no dates (got start_date %, end_date %): they load what is new since the high-water marks',
            v_start, v_end;
    end if;
    if p_load_type = 'HISTORY' and (p_start_date is null or p_end_date is null) then
        raise exception 'HISTORY loads need both start_date and end_date (got %, %)',
            v_start, v_end;
    end if;
    if p_load_type = 'HISTORY' and p_start_date > p_end_date then
        raise exception 'start_date % is after end_date %: expected start_date <= end_date',
            p_start_date, p_end_date;
    end if;
end;
$$ language plpgsql;
