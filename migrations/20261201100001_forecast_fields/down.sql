ALTER TABLE studies DROP COLUMN forecast_confidence_threshold;
ALTER TABLE sites DROP COLUMN planned_activation_on;
