"""The gateway: GA4GH APIs served from projections; state changes only by publishing events."""
