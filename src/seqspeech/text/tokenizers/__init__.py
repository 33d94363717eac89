"""seqspeech.text.tokenizers"""
