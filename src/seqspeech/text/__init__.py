"""seqspeech.text"""
