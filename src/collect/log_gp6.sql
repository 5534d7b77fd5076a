-- May the role read the server log? GP6: only a superuser may list, stat and read server
-- files. Run once, and again now and then while it may not (a GRANT is picked up), never
-- in the read itself: a function the role may not execute fails the whole statement, and
-- each failure is an ERROR in the server's own log.
SELECT current_setting('is_superuser') = 'on'
