"""The ASGI app for servers: `uvicorn primetrade.main:app`."""

from primetrade.app import create_app

app = create_app()
