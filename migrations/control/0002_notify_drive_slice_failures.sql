ALTER TABLE `export_jobs` ADD `slice_failures` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `export_jobs` ADD `notify_drive` integer DEFAULT 0 NOT NULL;