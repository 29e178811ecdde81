"""``rtp test``: endpoint tests on a fresh in-memory engine loaded with fixtures."""
