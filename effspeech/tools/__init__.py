"""The tools on top of the core and the S3PRL-facing layer: the ``effspeech`` command and what its
subcommands run (params, demo, leaderboard, bench, synth, check-data, average, pretrain,
make-checkpoint). Nothing below imports from here."""
