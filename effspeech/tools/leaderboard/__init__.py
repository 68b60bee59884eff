"""``effspeech leaderboard``: the paper's question as one resumable grid of run_downstream.py runs."""
