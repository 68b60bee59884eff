"""HuBERT-style masked-prediction pretraining of small upstreams on the Mini-SUPERB train splits.

The result is an S3PRL ``hubert_local`` checkpoint: ``hubert_local`` and ``hubert_mini_adapter`` load it
unchanged. ``effspeech pretrain`` is the command; ``train.pretrain(config.PretrainConfig(...))`` the
Python entry."""
