"""News feeds: fetching through the network guard, topic rules, duplicates, review."""
