"""Bounce runtime: decides and sends SES bounces (RFC 3464 DSNs) through SendBounce."""
