"""Monitoring in production: windows of mergeable statistics, rules, alerts."""
