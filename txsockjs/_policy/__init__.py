"""
Admission of requests to a SockJS service: the origin policy, the authentication hook and
host binding, and the per-address rate limit of new sessions.
"""
