"""Every module of the package, and every name `infomax` exports, imports first in a fresh
interpreter: no import cycle waits to break a user's first line (`from infomax import DIMLoss`)."""

import subprocess
import sys

# In one subprocess (torch and the other dependencies stay loaded), each module is imported with
# no infomax module loaded before it: a cycle fails whichever of its modules comes first.
SCRIPT = r"""
import importlib, pkgutil, sys
import infomax

modules = [m.name for m in pkgutil.walk_packages(infomax.__path__, "infomax.") if not m.name.endswith("__main__")]
entries = [(name, None) for name in modules] + [("infomax", name) for name in infomax._API]
failed = []
for module, attribute in entries:
    for loaded in [k for k in sys.modules if k == "infomax" or k.startswith("infomax.")]:
        del sys.modules[loaded]
    try:
        imported = importlib.import_module(module)
        if attribute is not None:
            getattr(imported, attribute)
    except Exception as e:
        failed.append(f"{module}{'.' + attribute if attribute else ''}: {e!r}")
print(len(entries))
print("\n".join(failed))
"""


def test_every_module_imports_first():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    count, *failed = done.stdout.strip().split("\n")
    assert int(count) > 100  # the walk found the package's modules
    assert [line for line in failed if line] == []
