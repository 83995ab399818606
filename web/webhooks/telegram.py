"""Telegram webhook (built with the channels work)."""
