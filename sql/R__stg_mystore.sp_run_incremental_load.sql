-- The nightly load: customers first, so the sales of the night find their customer.
-- One CALL is one transaction: if the sale load fails, the customer load is undone too
-- and the high-water marks stay where they were.
create or replace procedure stg_mystore.sp_run_incremental_load()
as $$
begin
    call stg_mystore.sp_load_customer_dim();
    call stg_mystore.sp_load_sale_fact('INCREMENTAL', null, null);
end;
$$ language plpgsql;
