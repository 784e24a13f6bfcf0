"""Hybrid routing: local engines first, allowed remotes for overflow and failover, by data class."""
