"""Speech translation: text MT with wait-k (:mod:`.mt`); the cascade and the direct model build on it."""
