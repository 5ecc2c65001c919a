-- The QRs whose expiry is still to be acted on, in one index range scan: on start, the QR
-- expiry task reads the QRs expiring since a day ago (`Storage::qrs_expiring_since`). Reading
-- "issued in the last day" instead scanned every event recorded that day, and a day that
-- recorded a long history at once (an import, a generated log) made the task load and try to
-- expire every QR of it (issue 17, the scale curve). `expires_at` is RFC 3339 text in UTC,
-- compared byte-wise ("C"), so that text order is time order whatever the database's locale.
CREATE INDEX events_qr_expires_at_idx ON events (((payload->>'expires_at') COLLATE "C"))
    WHERE event_type = 'QrIssued';
