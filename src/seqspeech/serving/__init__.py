"""seqspeech.serving"""
