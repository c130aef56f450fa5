"""Fetching: the one place that speaks HTTP, and the guard that decides which addresses it may reach."""
