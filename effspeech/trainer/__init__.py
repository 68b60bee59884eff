"""S3PRL-compatible downstream training with effspeech adapters (``run_downstream.py``).

Modules: args (flags), tasks (aliases, recipe table), config (YAML, -o, adapter section), datasets (data
paths, recipe quirks), experiment (new vs resumed runs), model (upstream + featurizer + head), optim,
sampling (resumable data order), checkpoint, distributed, results, runner (loops), main (entry point).
Importing the package imports none of them, so ``effspeech.trainer.tasks`` stays cheap."""
