-- Retention of the audit log: anonymous (failed) requests are capped by count, everything else is
-- kept by age. These indexes make both prunes, run every few hundred inserts, index seeks.
CREATE INDEX audit_log_by_actor ON audit_log (actor, id);
CREATE INDEX audit_log_by_time ON audit_log (created_at);
