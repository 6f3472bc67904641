-- A realistic large dataset, made in seconds with generate_series (run it on a migrated,
-- otherwise empty database; scripts/bench_scale.sh does):
--   200 studies with 19,910 sites in all, every site 50 weeks of enrollment reports
--   (995,500 rows), 5 deviations per site (99,550), and an audit event per report
--   (995,500, queued for sealing by their insert trigger: the service seals them when it
--   starts). Study 1 (1,000 sites) is ten times larger than study 2 (100 sites) in sites,
--   reports and deviations, for the metrics check; the others have 95 sites each.
-- Ids are md5-derived UUIDs, so a run is reproducible.
\set ON_ERROR_STOP on
SET synchronous_commit = off;

INSERT INTO studies (id, protocol_number, title, phase, status, currency, target_enrollment,
                     planned_start_date, planned_end_date)
SELECT md5('study ' || s)::uuid, 'SCALE-' || s, 'Scale study ' || s, 'phase3', 'recruiting', 'EUR',
       2000, date '2024-01-01', date '2027-12-31'
FROM generate_series(1, 200) AS s;

-- Study 1: 1,000 sites; study 2: 100; studies 3..200: 95 each.
INSERT INTO sites (id, study_id, site_number, name, country, status, activated_on)
SELECT md5('site ' || st || '/' || n)::uuid, md5('study ' || st)::uuid, lpad(n::text, 4, '0'),
       'Site ' || st || '/' || n, (ARRAY['DE', 'FR', 'US', 'ES', 'PL', 'JP'])[1 + n % 6],
       'enrolling', date '2024-01-01' + (n % 60)
FROM generate_series(1, 200) AS st,
     LATERAL generate_series(1, CASE st WHEN 1 THEN 1000 WHEN 2 THEN 100 ELSE 95 END) AS n;

-- 50 Mondays from 2024-01-01 per site.
INSERT INTO enrollment_reports (id, study_id, site_id, week_start, screened, screen_failed,
                                enrolled, discontinued, completed)
SELECT md5('report ' || s.id || '/' || w)::uuid, s.study_id, s.id, date '2024-01-01' + 7 * w,
       3, 1, (hashtext(s.id::text || w) & 3), 0, 0
FROM sites s, generate_series(0, 49) AS w;

-- 5 deviations per site.
INSERT INTO deviations (id, study_id, site_id, participant_ref, category, description, importance,
                        occurred_on, detected_on, reported_on, status)
SELECT md5('deviation ' || s.id || '/' || d)::uuid, s.study_id, s.id, 'P-' || d,
       (ARRAY['informed_consent', 'eligibility', 'visit_schedule', 'other'])[1 + d % 4],
       'Scale deviation', CASE WHEN d % 5 = 0 THEN 'important' ELSE 'not_important' END,
       date '2024-06-01' + d, date '2024-06-02' + d, date '2024-06-05' + d, 'open'
FROM sites s, generate_series(1, 5) AS d;

-- An audit event per report, shaped like the service's (a create with its changes and data).
INSERT INTO audit_events (actor, actor_name, role, action, entity_type, entity_id, study_id,
                          entity_version, changes, data, reason, request_id, site_id)
SELECT 'cli', 'scale seed', 'admin', 'create', 'enrollment_report', r.id, r.study_id, 1,
       jsonb_build_object('enrolled', jsonb_build_object('old', null, 'new', r.enrolled),
                          'week_start', jsonb_build_object('old', null, 'new', r.week_start)),
       jsonb_build_object('id', r.id, 'study_id', r.study_id, 'site_id', r.site_id,
                          'week_start', r.week_start, 'screened', r.screened,
                          'enrolled', r.enrolled, 'version', 1),
       'scale seed', NULL, r.site_id
FROM enrollment_reports r;

ANALYZE;
