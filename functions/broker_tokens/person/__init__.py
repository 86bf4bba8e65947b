"""The person's part of a login: one-time links, the alert's words, and the small pages a phone opens."""
