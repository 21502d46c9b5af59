"""``python -m transcript_indexer``."""

from transcript_indexer.main import main

main()
