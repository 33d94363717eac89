"""seqspeech.asr"""
