-- No statistics for columns that no statement filters or sorts on: ANALYZE (autovacuum's, or
-- the node's own on a server with autovacuum off, see storage/postgres.rs `keep_statistics`)
-- then samples and sorts only the columns the planner uses. On a 100,000-event log, ANALYZE of
-- `events` took 317–357 ms with these columns and 154 ms without (issue 17, 2026-12-01): the
-- jsonb values were compared and sorted for a histogram nothing reads. The expressions of the
-- lookup indexes (payload->>'qr_id', …) keep their own statistics; `event_id` is unique, which
-- its index tells the planner. SQLite's ANALYZE only ever looks at indexes: nothing to do there.
ALTER TABLE events
    ALTER COLUMN payload SET STATISTICS 0,
    ALTER COLUMN metadata SET STATISTICS 0,
    ALTER COLUMN hash SET STATISTICS 0,
    ALTER COLUMN event_id SET STATISTICS 0;
ALTER TABLE bank_notifications
    ALTER COLUMN headers SET STATISTICS 0,
    ALTER COLUMN body SET STATISTICS 0;
ALTER TABLE read_model_documents
    ALTER COLUMN doc SET STATISTICS 0;
