"""How a hint printed for the user writes a ``voicetap`` command: the way they can run it.

``voicetap`` is on PATH once the virtual environment is activated or the package installed; a
newcomer who followed the README runs everything through ``python3 dev.py`` instead.
"""

import shutil


def voicetap_command(arguments: str) -> str:
    """``voicetap ARGUMENTS`` when ``voicetap`` is on PATH, else ``python3 dev.py ARGUMENTS``."""
    program = "voicetap" if shutil.which("voicetap") else "python3 dev.py"
    return f"{program} {arguments}"
