"""Privacy and trust: signed links, consent per purpose, rejected guesses, export, erase, retention, audit."""
