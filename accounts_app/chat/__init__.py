"""Chat channels: notifications to DingTalk, Feishu/Lark, WeCom and Slack groups."""
