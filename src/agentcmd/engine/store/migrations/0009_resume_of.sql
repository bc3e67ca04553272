-- 0009: a resumed run (flow/resume.py) names the failed or cancelled run it
-- resumes, so the dashboard and the app can link both ways. NULL for every other run.
ALTER TABLE runs ADD COLUMN resume_of TEXT;
CREATE INDEX runs_by_resume_of ON runs (resume_of) WHERE resume_of IS NOT NULL;
