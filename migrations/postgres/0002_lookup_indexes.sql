-- Lookups that the counter screens and the payment intake make on the log itself. PostgreSQL
-- maintains these partial expression indexes inside each append, so a lookup is exact the
-- moment the append commits: no projection lag between a QR being issued and its image, or
-- between a case arriving at a counter and the counter's screens showing it.

-- GET /qr/{qr_id}.svg: the QR's payload.
CREATE INDEX events_qr_id_idx ON events ((payload->>'qr_id'))
    WHERE event_type = 'QrIssued';

-- The case a counter shows: its latest assessment or QR at that (agency, counter).
CREATE INDEX events_counter_activation_idx
    ON events ((payload->>'agency_code'), (payload->>'counter_id'), global_position)
    WHERE event_type IN ('FeeAssessed', 'QrIssued');

-- Bank notifications carry the QR's payment reference.
CREATE INDEX events_qr_reference_idx ON events ((payload->>'reference'))
    WHERE event_type = 'QrIssued';
