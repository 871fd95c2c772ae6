-- Tables whose rows are user data, so pg_dump includes them even though the
-- extension created the tables.
SELECT pg_catalog.pg_extension_config_dump('sluice.tasks', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.runs_p0', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.run_partitions', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.attempt_errors', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.idempotency_keys', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.ready_0', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.ready_1', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.delayed', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.leases_0', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.leases_1', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.workers', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.settings', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.run_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.ready_position_seq', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.run_gates', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.concurrency_slots', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.rate_limits', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.held', '');
