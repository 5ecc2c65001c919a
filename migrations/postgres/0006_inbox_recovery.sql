-- A notification whose handling was interrupted (a crash, a SIGKILL) stays in 'received'. The
-- inbox recovery finishes it later from its stored bytes, or marks it 'superseded' when the
-- provider's retry of the same money was handled in the meantime.
ALTER TABLE bank_notifications DROP CONSTRAINT bank_notifications_outcome_check;
ALTER TABLE bank_notifications ADD CONSTRAINT bank_notifications_outcome_check CHECK (outcome IN
    ('received', 'recorded', 'unmatched', 'duplicate', 'ignored', 'rejected', 'failed', 'superseded'));

-- The recovery looks only at unfinished rows; they are few, so the index stays small.
CREATE INDEX bank_notifications_unfinished_idx ON bank_notifications (received_at) WHERE outcome = 'received';
