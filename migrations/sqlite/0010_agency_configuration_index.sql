-- The newest agency configuration in one index probe: payment intake keeps the agencies'
-- collection accounts in memory and checks, per notification, that nothing newer was configured
-- (issue 17). Without it that check, and the reload, read the whole log.
CREATE INDEX events_agency_configured_idx ON events (global_position) WHERE event_type = 'AgencyConfigured';
