"""Payments: links, providers (Stripe, the embedded test page), the ledger and verified events.

Only this package imports stripe. `build_provider(settings)` picks the provider the firm configured.
"""
