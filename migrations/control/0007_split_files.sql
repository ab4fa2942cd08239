CREATE TABLE `export_files` (
	`job_id` text NOT NULL,
	`file_index` integer NOT NULL,
	`object_key` text NOT NULL,
	`count` integer NOT NULL,
	`bytes` integer NOT NULL,
	PRIMARY KEY(`job_id`, `file_index`),
	FOREIGN KEY (`job_id`) REFERENCES `export_jobs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
ALTER TABLE `export_jobs` ADD `file_index` integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE `export_jobs` ADD `file_rows` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `export_jobs` ADD `file_text_bytes` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Added by hand: exports under way when this migration runs are unsplit, and their one file so far holds every
-- row and byte written; the slice that resumes them reads these columns.
UPDATE `export_jobs` SET `file_rows` = `cursor_count`, `file_text_bytes` = `bytes_written` WHERE `state` IN ('queued', 'running');