"""``effspeech bench``: time, memory and checkpoint size of every tuning method on one upstream, each
method in its own subprocess (so that its peak memory is its own) and methods interleaved in rounds
(so that machine drift hits all of them alike)."""
