CREATE TABLE `import_batches` (
	`id` integer PRIMARY KEY NOT NULL,
	`account_id` integer NOT NULL,
	`job_id` text NOT NULL,
	`first_row` integer NOT NULL,
	`outcomes` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `import_batches_job_row_idx` ON `import_batches` (`job_id`,`first_row`);--> statement-breakpoint
CREATE INDEX `import_batches_account_idx` ON `import_batches` (`account_id`);