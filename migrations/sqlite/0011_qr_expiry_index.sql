-- The QRs whose expiry is still to be acted on, in one index range scan (see the PostgreSQL
-- migration of the same number). SQLite compares text byte-wise already.
CREATE INDEX events_qr_expires_at_idx ON events (json_extract(payload, '$.expires_at'))
    WHERE event_type = 'QrIssued';
