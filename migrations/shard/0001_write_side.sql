DROP INDEX `lists_account_idx`;--> statement-breakpoint
CREATE UNIQUE INDEX `lists_account_name_idx` ON `lists` (`account_id`,`name`);--> statement-breakpoint
ALTER TABLE `custom_fields` ADD `default_value` text;--> statement-breakpoint
ALTER TABLE `custom_fields` ADD `required` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `tags` ADD `description` text;--> statement-breakpoint
CREATE INDEX `subscribers_list_status_idx` ON `subscribers` (`list_id`,`status`);