CREATE TABLE `account_directory` (
	`account_id` integer PRIMARY KEY NOT NULL,
	`shard` text NOT NULL,
	`writes_frozen` integer DEFAULT false NOT NULL,
	`updated_at` integer DEFAULT 0 NOT NULL,
	FOREIGN KEY (`account_id`) REFERENCES `accounts`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`shard`) REFERENCES `shards`(`name`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `account_directory_shard_idx` ON `account_directory` (`shard`);--> statement-breakpoint
CREATE TABLE `id_sequences` (
	`name` text PRIMARY KEY NOT NULL,
	`last_id` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE `shards` (
	`name` text PRIMARY KEY NOT NULL,
	`placement` text DEFAULT 'open' NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')) NOT NULL
);
--> statement-breakpoint
-- Contacts move to the data shards (migrations/shard). Children before parents: D1 enforces foreign keys.
DROP TABLE `subscriber_tags`;--> statement-breakpoint
DROP TABLE `subscribers`;--> statement-breakpoint
DROP TABLE `segments`;--> statement-breakpoint
DROP TABLE `tags`;--> statement-breakpoint
DROP TABLE `custom_fields`;--> statement-breakpoint
DROP TABLE `lists`;--> statement-breakpoint
ALTER TABLE `export_jobs` ADD `shard` text;--> statement-breakpoint
ALTER TABLE `export_jobs` ADD `abandoned_upload_id` text;