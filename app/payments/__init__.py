"""Payments: the one door to Stripe (`gateway`) and the offline fake Stripe (`localstripe_server`)."""
