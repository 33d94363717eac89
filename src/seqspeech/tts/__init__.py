"""Speech synthesis: text front end -> acoustic model (Tacotron 2, FastSpeech 2) -> mel -> vocoder -> waveform."""
