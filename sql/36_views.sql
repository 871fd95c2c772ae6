-- Views for people and dashboards.

CREATE VIEW sluice.queue_depth AS
SELECT q.queue,
       coalesce(r.ready, 0) AS queued,
       coalesce(d.scheduled, 0) AS scheduled,
       coalesce(l.running, 0) AS running,
       r.oldest_ready_at
FROM (SELECT t.queue FROM sluice.tasks t UNION SELECT r.queue FROM sluice.ready r) q
LEFT JOIN (SELECT r.queue, count(*) AS ready, min(r.ready_at) AS oldest_ready_at
           FROM sluice.ready r GROUP BY r.queue) r USING (queue)
LEFT JOIN (SELECT d.queue, count(*) AS scheduled FROM sluice.delayed d GROUP BY d.queue) d USING (queue)
LEFT JOIN (SELECT u.queue, count(*) AS running
           FROM sluice.leases l JOIN sluice.runs u ON u.id = l.run_id GROUP BY u.queue) l USING (queue);

COMMENT ON VIEW sluice.queue_depth IS
    'Per queue: runs ready to start, runs scheduled for later, runs running, and when the oldest ready run became ready.';

CREATE VIEW sluice.worker_status AS
SELECT w.id, w.name, w.hostname, w.pid, w.slots,
       (SELECT count(*) FROM sluice.leases l WHERE l.worker_id = w.id) AS running,
       w.queues, w.tasks, w.labels, w.started_at, w.heartbeat_at, w.stopped_at, w.stop_reason,
       CASE WHEN w.stopped_at IS NOT NULL THEN 'stopped'
            WHEN w.heartbeat_at < sluice.now() - w.lease_timeout THEN 'silent'
            ELSE 'active' END AS state
FROM sluice.workers w;

COMMENT ON VIEW sluice.worker_status IS
    'Worker incarnations with the number of runs each holds and a state: active, silent (heartbeat overdue) or stopped.';

CREATE VIEW sluice.run_timeline AS
SELECT r.id AS run_id, 'enqueued' AS event, r.created_at AS at, NULL::integer AS attempt, NULL::jsonb AS detail
FROM sluice.runs r
UNION ALL
SELECT e.run_id, 'attempt failed', e.failed_at, e.attempt, e.error FROM sluice.attempt_errors e
UNION ALL
SELECT r.id, 'started', r.started_at, r.attempt, NULL FROM sluice.runs r WHERE r.started_at IS NOT NULL
UNION ALL
SELECT r.id, r.status::text, r.finished_at, r.attempt, coalesce(r.error, r.output)
FROM sluice.runs r WHERE r.finished_at IS NOT NULL;

COMMENT ON VIEW sluice.run_timeline IS
    'Events of each run: enqueued, every failed attempt with its error, the latest start, and the final state.';
