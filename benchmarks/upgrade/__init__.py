"""Upgrade timing against simulated members, and its cost per million members."""
