"""Sandbox state."""
