-- Tables whose rows are user data, so pg_dump includes them even though the
-- extension created the tables.
SELECT pg_catalog.pg_extension_config_dump('sluice.tasks', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.runs_p0', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.run_partitions', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.attempt_errors', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.idempotency_keys', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.ready', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.delayed', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.leases', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.workers', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.settings', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.run_id_seq', '');
