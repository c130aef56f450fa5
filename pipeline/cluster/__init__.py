"""Event dedup: near-duplicate wire copies, event clustering into stories, and the figures timeline."""
