"""Call recordings: the sealed container format and the keys that open it."""
