-- Lookups that the counter screens and the payment intake make on the log itself (see
-- migrations/postgres/0002_lookup_indexes.sql): partial expression indexes kept by SQLite
-- inside each append.

CREATE INDEX events_qr_id_idx ON events (json_extract(payload, '$.qr_id'))
    WHERE event_type = 'QrIssued';

CREATE INDEX events_counter_activation_idx
    ON events (json_extract(payload, '$.agency_code'), json_extract(payload, '$.counter_id'), global_position)
    WHERE event_type IN ('FeeAssessed', 'QrIssued');

CREATE INDEX events_qr_reference_idx ON events (json_extract(payload, '$.reference'))
    WHERE event_type = 'QrIssued';
