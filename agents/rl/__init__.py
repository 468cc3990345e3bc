"""Reinforcement-learning recommenders: slate policy networks and CleanRL-style training scripts."""
