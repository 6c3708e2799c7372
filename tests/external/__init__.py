"""Checks written by others, run against txsockjs: Autobahn|Testsuite (RFC 6455)."""
