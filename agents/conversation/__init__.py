"""Conversational recommendation: conversational agents (CRS), conversational users, the conversation layer."""
