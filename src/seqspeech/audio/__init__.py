"""Audio front end: decoding files, features, augmentation, voice activity detection."""
