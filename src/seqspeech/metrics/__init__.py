"""seqspeech.metrics"""
