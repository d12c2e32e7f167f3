"""The data steward's workbench: a FastAPI app of server-rendered pages (no build step).

    from joinedup.steward.web import create_app
    app = create_app()            # JOINEDUP_DB_URL or var/mci.sqlite; JOINEDUP_SECRET_KEY or var/
"""
from joinedup.steward.web.app import create_app

__all__ = ["create_app"]
