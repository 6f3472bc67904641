DROP TABLE IF EXISTS enrollment_reports;
DROP TABLE IF EXISTS deviations;
DROP TABLE IF EXISTS risks;
DROP TABLE IF EXISTS expenses;
DROP TABLE IF EXISTS budget_lines;
DROP TABLE IF EXISTS milestones;
DROP INDEX IF EXISTS vendors_updated_at_idx;
