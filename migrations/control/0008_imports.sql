ALTER TABLE `export_jobs` ADD `kind` text DEFAULT 'export' NOT NULL;--> statement-breakpoint
ALTER TABLE `export_jobs` ADD `rows_added` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `export_jobs` ADD `rows_updated` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `export_jobs` ADD `rows_rejected` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `export_jobs` ADD `source_bytes` integer;