"""voicetap-sdk: subscribe to voicetap topics."""
