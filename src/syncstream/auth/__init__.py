"""Authentication: password hashes, session tokens, and who a request's caller is."""
