"""S3PRL-compatible downstream training with effspeech adapters (``run_downstream.py``).

Modules: args (flags), config (YAML, -o, the adapter section), experiment (new vs resumed runs),
pipeline (upstream + featurizer + head), optim, sampling (resumable data order), rng, metrics,
audio_reads and bad_data (faulty audio), distributed, runner (the loops), main (the entry point). The
files a run writes are ``effspeech.superb.records``; what differs between tasks is
``effspeech.superb.tasks``."""
