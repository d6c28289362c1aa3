"""The `pare-demo` command: the Gradio app (app.py at the repository root), as `python app.py`.

    pare-demo [--host 127.0.0.1] [--port 7860] [--share] [--checkpoint C] [--body-model B]

app.py is a script beside the package, not part of it; this loads it from the checkout the
package belongs to (an editable install, as `make setup` makes) and runs its main().
"""
from __future__ import annotations

import importlib.util
import sys

from pare_demo import paths

APP_SCRIPT = paths.REPO_ROOT / "app.py"


def main() -> None:
    if not APP_SCRIPT.is_file():
        sys.exit(f"pare-demo: the app's script {APP_SCRIPT} is missing. The app runs from a checkout of "
                 "the repository: install it there with `make setup` (pip install -e .).")
    spec = importlib.util.spec_from_file_location("app", APP_SCRIPT)
    app = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("app", app)
    spec.loader.exec_module(app)
    app.main()


if __name__ == "__main__":
    main()
