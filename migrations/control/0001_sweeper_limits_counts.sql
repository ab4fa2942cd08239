CREATE TABLE `idempotency_keys` (
	`account_id` integer NOT NULL,
	`key` text NOT NULL,
	`request_hash` text NOT NULL,
	`job_id` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`account_id`, `key`),
	FOREIGN KEY (`account_id`) REFERENCES `accounts`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`job_id`) REFERENCES `export_jobs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `idempotency_keys_created_idx` ON `idempotency_keys` (`created_at`);--> statement-breakpoint
ALTER TABLE `export_jobs` ADD `drive` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `export_jobs` ADD `due_at` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `export_jobs` ADD `redrives` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `export_jobs` ADD `request_hash` text;--> statement-breakpoint
ALTER TABLE `export_jobs` ADD `notify_due_at` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX `export_jobs_account_state_idx` ON `export_jobs` (`account_id`,`state`,`request_hash`);--> statement-breakpoint
CREATE INDEX `export_jobs_sweep_idx` ON `export_jobs` (`state`,`due_at`);--> statement-breakpoint
CREATE INDEX `export_jobs_notify_sweep_idx` ON `export_jobs` (`notify_state`,`notify_due_at`);--> statement-breakpoint
ALTER TABLE `segments` ADD `contacts_count` integer;--> statement-breakpoint
ALTER TABLE `segments` ADD `counted_at` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `segments` ADD `count_error` text;--> statement-breakpoint
CREATE INDEX `segments_counted_at_idx` ON `segments` (`counted_at`);