CREATE TABLE `account_moves` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`account_id` integer NOT NULL,
	`source` text NOT NULL,
	`target` text NOT NULL,
	`state` text DEFAULT 'copying' NOT NULL,
	`cursor` text DEFAULT '{"step":0,"after":null}' NOT NULL,
	`verification` text DEFAULT '{}' NOT NULL,
	`copied_rows` integer DEFAULT 0 NOT NULL,
	`deleted_rows` integer DEFAULT 0 NOT NULL,
	`version` integer DEFAULT 0 NOT NULL,
	`lease_expires_at` integer DEFAULT 0 NOT NULL,
	`drive` integer DEFAULT 0 NOT NULL,
	`due_at` integer DEFAULT 0 NOT NULL,
	`slices` integer DEFAULT 0 NOT NULL,
	`failures` integer DEFAULT 0 NOT NULL,
	`error` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')) NOT NULL,
	`updated_at` integer DEFAULT 0 NOT NULL,
	`finished_at` text,
	FOREIGN KEY (`account_id`) REFERENCES `accounts`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `account_moves_active_idx` ON `account_moves` (`account_id`) WHERE state NOT IN ('done', 'failed');--> statement-breakpoint
CREATE INDEX `account_moves_sweep_idx` ON `account_moves` (`state`,`due_at`);