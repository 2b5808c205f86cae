"""crossbook: an exchange in a box."""

from crossbook import engine_build

__version__ = "0.1.0"

# The engine build (mypyc-compiled or the sources) is chosen once, before any engine import.
ENGINE_BUILD = engine_build.select()
