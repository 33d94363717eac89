"""seqspeech.decoding"""
