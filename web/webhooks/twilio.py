"""Twilio webhooks (built with the channels work)."""
