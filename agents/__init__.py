"""Agents: user agents (personas, populations, brains, memory) and recommender agents."""
