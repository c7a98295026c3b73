"""The Dash dashboard: Pareto explorer, format detail and designer over a folder of study results.

`create_app(results_dir)` builds the app; `lowbit dashboard RESULTS_DIR` serves it. Figures are pure
functions (`figures`), component IDs live in `ids`, and callbacks hand the page's state to `views`.
"""

from .app import create_app

__all__ = ["create_app"]
