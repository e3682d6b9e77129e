"""The web app: static files served by the API's own process, no build step."""
