"""voicetap console: live calls, one call (recording, transcript, analytics), search and ops in a browser."""
