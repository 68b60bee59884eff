"""Find what is wrong with a task's data before a run trips over it: ``effspeech check-data``."""
