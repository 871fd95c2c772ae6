-- Support functions: the clock, errors, validation, backoff and partitions.
-- Names starting with an underscore are private to the extension.

-- The database clock every time decision reads. Tests move time by setting
-- sluice.clock_offset (an interval) for a session or a database.
CREATE FUNCTION sluice.now() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.now()
         + coalesce(nullif(pg_catalog.current_setting('sluice.clock_offset', true), ''), '0')::interval
$$;

COMMENT ON FUNCTION sluice.now() IS
    'Current time as Sluice sees it: now() plus the interval in the setting sluice.clock_offset (tests only).';

-- Raises SL004 for an option value outside its allowed range.
CREATE FUNCTION sluice._invalid_option(p_option text, p_value text, p_allowed text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION 'invalid %: %', p_option, coalesce(p_value, 'NULL')
        USING ERRCODE = 'SL004', DETAIL = p_allowed;
END
$$;

-- Names of tasks and queues are identifiers that also travel in
-- notifications, so they are kept short and printable.
CREATE FUNCTION sluice._check_name(p_kind text, p_name text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF p_name IS NULL OR p_name !~ '^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$' THEN
        PERFORM sluice._invalid_option(p_kind, pg_catalog.quote_literal(coalesce(p_name, 'NULL')),
            format('A %s is 1 to 128 characters: letters, digits and _ . : / -, starting with a letter or digit.', p_kind));
    END IF;
END
$$;

-- Raises SL004 unless p_value lies within [p_min, p_max]. Integers reach it
-- exactly, because double precision represents every integer up to 2^53.
CREATE FUNCTION sluice._check_range(p_option text, p_value double precision, p_min double precision,
                                    p_max double precision) RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF p_value IS NULL OR p_value < p_min OR p_value > p_max OR p_value = 'NaN' THEN
        PERFORM sluice._invalid_option(p_option, p_value::text, format('Allowed values are %s to %s.', p_min, p_max));
    END IF;
END
$$;

CREATE FUNCTION sluice._check_interval(p_option text, p_value interval, p_min interval, p_max interval) RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF p_value IS NULL OR p_value < p_min OR p_value > p_max THEN
        PERFORM sluice._invalid_option(p_option, p_value::text, format('Allowed values are %s to %s.', p_min, p_max));
    END IF;
END
$$;

-- The largest input, metadata or output a run accepts, in bytes of its
-- binary jsonb form. Larger payloads belong in object storage, with a
-- reference in the input.
CREATE FUNCTION sluice.max_payload_bytes() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 16 * 1024 * 1024 $$;

COMMENT ON FUNCTION sluice.max_payload_bytes() IS
    'Largest input, metadata or output accepted, in bytes of the binary jsonb value (16 MiB).';

-- Raises SL002 unless p_value is a JSON object within the payload limit.
CREATE FUNCTION sluice._check_payload(p_what text, p_value jsonb, p_require_object boolean) RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v_size integer;
BEGIN
    IF p_value IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', p_what
            USING ERRCODE = 'SL002', HINT = 'Pass ''{}'' for an empty object.';
    END IF;
    IF p_require_object AND pg_catalog.jsonb_typeof(p_value) <> 'object' THEN
        RAISE EXCEPTION '% must be a JSON object, not %', p_what, pg_catalog.jsonb_typeof(p_value)
            USING ERRCODE = 'SL002',
                  DETAIL = format('The value starts with %s.', pg_catalog.left(p_value::text, 40)),
                  HINT = 'Wrap the value in an object, for example {"value": ...}.';
    END IF;
    v_size := pg_catalog.pg_column_size(p_value);
    IF v_size > sluice.max_payload_bytes() THEN
        RAISE EXCEPTION '% is too large: % bytes', p_what, v_size
            USING ERRCODE = 'SL002',
                  DETAIL = format('The limit is %s bytes.', sluice.max_payload_bytes()),
                  HINT = 'Store large data elsewhere and pass a reference to it.';
    END IF;
END
$$;

-- Delay before retry number p_attempt + 1, after attempt p_attempt failed:
-- base * factor^(attempt - 1), capped at p_max, then spread by +/- jitter.
-- The exponent is capped in log space first, so no attempt number overflows.
CREATE FUNCTION sluice.retry_delay(
    p_attempt integer, p_base interval, p_factor double precision, p_max interval, p_jitter double precision
) RETURNS interval
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    v_base double precision := extract(epoch FROM p_base);
    v_max double precision := extract(epoch FROM p_max);
    v_seconds double precision;
BEGIN
    IF v_base <= 0 THEN
        v_seconds := 0;
    ELSIF p_factor <= 1 THEN
        v_seconds := least(v_base, v_max);
    ELSE
        v_seconds := v_base * exp(least((greatest(p_attempt, 1) - 1) * ln(p_factor), ln(greatest(v_max, v_base) / v_base)));
        v_seconds := least(v_seconds, v_max);
    END IF;
    v_seconds := v_seconds * (1 + p_jitter * (2 * random() - 1));
    RETURN make_interval(secs => greatest(v_seconds, 0));
END
$$;

COMMENT ON FUNCTION sluice.retry_delay(integer, interval, double precision, interval, double precision) IS
    'Backoff before the next attempt after attempt N failed: base * factor^(N-1), capped, with +/- jitter as a fraction.';

-- Width of each history partition in run ids. Rotation moves the sequence to
-- the next range, so ids stay unique and increasing; 10^12 ids a partition
-- leaves room for nine million partitions.
CREATE FUNCTION sluice._partition_span() RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 1000000000000::bigint $$;

-- Creates history partition number p_number. A claim updates every run it
-- starts and the completion updates it again. With fillfactor 65 the claim's
-- new versions of about half of a page's runs fit on their page, so 69% of
-- the updates were HOT, against 43% at 80. That wrote 8% less WAL, and after
-- a million runs table and index took 304 MB against 325 MB (bench/RESULTS.md).
CREATE FUNCTION sluice._create_partition(p_number integer) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_first bigint := p_number::bigint * sluice._partition_span();
    v_end bigint := (p_number::bigint + 1) * sluice._partition_span();
    v_name text := format('runs_p%s', p_number);
BEGIN
    EXECUTE format('CREATE TABLE sluice.%I PARTITION OF sluice.runs FOR VALUES FROM (%s) TO (%s) '
                   'WITH (fillfactor = 65, autovacuum_vacuum_scale_factor = 0.05)',
                   v_name, v_first, v_end);
    INSERT INTO sluice.run_partitions (number, first_id, end_id, created_at)
    VALUES (p_number, v_first, v_end, sluice.now());
END
$$;

SELECT sluice._create_partition(0);

-- Requests a sluice_ready notification for p_queue at commit, sent only if a
-- worker waits for that queue then (extension/src/wake.c). Repeated calls in
-- one transaction cost nothing more.
CREATE FUNCTION sluice._wake(p_queue text) RETURNS void
    LANGUAGE c STRICT
    AS 'MODULE_PATHNAME', 'sluice_wake';
