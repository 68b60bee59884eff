"""The SUPERB recipes' configs, ``downstream/<task>/config.yaml`` as in S3PRL's tree: S3PRL's settings
plus effspeech's ``adapter:`` section. The recipes' code is S3PRL's own (``s3prl.downstream.<task>``);
these files ship in the wheel beside ``effspeech`` (``effspeech.superb.tasks`` finds them)."""
