CREATE TABLE `custom_fields` (
	`id` integer PRIMARY KEY NOT NULL,
	`account_id` integer NOT NULL,
	`name` text NOT NULL,
	`type` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `custom_fields_account_name_idx` ON `custom_fields` (`account_id`,`name`);--> statement-breakpoint
CREATE TABLE `lists` (
	`id` integer PRIMARY KEY NOT NULL,
	`account_id` integer NOT NULL,
	`name` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `lists_account_idx` ON `lists` (`account_id`);--> statement-breakpoint
CREATE TABLE `segments` (
	`id` integer PRIMARY KEY NOT NULL,
	`account_id` integer NOT NULL,
	`name` text NOT NULL,
	`rules` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')) NOT NULL,
	`contacts_count` integer,
	`counted_at` integer DEFAULT 0 NOT NULL,
	`count_error` text
);
--> statement-breakpoint
CREATE INDEX `segments_account_idx` ON `segments` (`account_id`);--> statement-breakpoint
CREATE INDEX `segments_counted_at_idx` ON `segments` (`counted_at`);--> statement-breakpoint
CREATE TABLE `subscriber_tags` (
	`subscriber_id` integer NOT NULL,
	`tag_id` integer NOT NULL,
	PRIMARY KEY(`subscriber_id`, `tag_id`),
	FOREIGN KEY (`subscriber_id`) REFERENCES `subscribers`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`tag_id`) REFERENCES `tags`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `subscriber_tags_tag_idx` ON `subscriber_tags` (`tag_id`,`subscriber_id`);--> statement-breakpoint
CREATE TABLE `subscribers` (
	`id` integer PRIMARY KEY NOT NULL,
	`account_id` integer NOT NULL,
	`list_id` integer NOT NULL,
	`email` text NOT NULL,
	`status` text NOT NULL,
	`subscribe_date` text NOT NULL,
	`custom_fields` text DEFAULT '{}' NOT NULL,
	FOREIGN KEY (`list_id`) REFERENCES `lists`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `subscribers_account_idx` ON `subscribers` (`account_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `subscribers_list_email_idx` ON `subscribers` (`list_id`,`email`);--> statement-breakpoint
CREATE TABLE `tags` (
	`id` integer PRIMARY KEY NOT NULL,
	`account_id` integer NOT NULL,
	`name` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `tags_account_name_idx` ON `tags` (`account_id`,`name`);