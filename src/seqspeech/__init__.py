"""seqspeech."""
