"""Mini-SUPERB: six small synthetic corpora in the real corpora's layouts, made with espeak-ng
(``mini_superb.generate``; ``effspeech synth`` is the command). One module per task writes its corpus;
``render`` is the utterance pipeline, ``voices`` the speakers, ``cache`` the corpora kept for the demo
and the leaderboard."""
