"""Who may use pointbridge: REST API tokens (stored hashed) and the admin console's users
(passwords hashed with Argon2id, failed logins throttled).
"""
