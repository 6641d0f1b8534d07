-- UTC months as functions, so the store's quota SQL reads the same on
-- PostgreSQL and on SQLite (where core registers functions of these names).
CREATE FUNCTION month_start(t timestamptz) RETURNS date IMMUTABLE LANGUAGE sql AS $$
    SELECT date_trunc('month', t AT TIME ZONE 'UTC')::date
$$;

CREATE FUNCTION next_month(t timestamptz) RETURNS timestamptz IMMUTABLE LANGUAGE sql AS $$
    SELECT (date_trunc('month', t AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
$$;
