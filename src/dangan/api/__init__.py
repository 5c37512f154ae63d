"""HTTP API (FastAPI). The domain never imports this package."""

from dangan.api.app import app_from_env, create_app

__all__ = ["app_from_env", "create_app"]
