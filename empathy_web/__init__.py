"""Empathy Web: a live dashboard for agent teams sharing short-term memory."""
