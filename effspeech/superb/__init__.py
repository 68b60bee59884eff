"""The S3PRL-facing layer: S3PRL upstreams with adapters, the SUPERB tasks, the trainer behind
``run_downstream.py`` and the files an experiment leaves.

Importing this package (or any module in it) first installs the compatibility shims of ``compat``,
which let s3prl 0.4.18 run on current torch and torchaudio; every module here that imports s3prl
does so after that. The core (``effspeech``) never imports this package."""

from effspeech.superb import compat

compat.install()
