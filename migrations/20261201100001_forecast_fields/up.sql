-- Issue 11: the enrollment forecast's inputs. A site that is not yet active enrolls, in
-- the forecast, from its planned activation date; a study says how sure its completion
-- forecast must be before `completion_at_risk` stays quiet.

ALTER TABLE sites ADD COLUMN planned_activation_on date;

ALTER TABLE studies ADD COLUMN forecast_confidence_threshold double precision NOT NULL DEFAULT 0.8
    CONSTRAINT studies_forecast_confidence_threshold_check
    CHECK (forecast_confidence_threshold > 0 AND forecast_confidence_threshold < 1);
