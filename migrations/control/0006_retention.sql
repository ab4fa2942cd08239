ALTER TABLE `export_jobs` ADD `retained_until` integer;--> statement-breakpoint
CREATE INDEX `export_jobs_retention_idx` ON `export_jobs` (`state`,`retained_until`);