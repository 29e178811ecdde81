"""The ``rtp`` command line: one module per command, errors turned into output here."""
