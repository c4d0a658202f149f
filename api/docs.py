"""The human-readable API page: Swagger UI served from the installed package."""

from __future__ import annotations

from flask import Blueprint, Response, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from api.auth import Access, access

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>soh-es API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: true,
      validatorUrl: null
    });
  </script>
</body>
</html>
"""


def create_blueprint() -> Blueprint:
    """Returns the blueprint of the API page and its assets (no CDN needed)."""
    blp = Blueprint("docs", __name__)

    @blp.route("/docs")
    @access(Access.PUBLIC)
    def api_page() -> Response:
        """The API page, rendered in the browser from /openapi.json."""
        return Response(PAGE, mimetype="text/html")

    @blp.route("/docs/assets/<path:filename>")
    @access(Access.PUBLIC)
    def api_page_asset(filename: str) -> Response:
        """Swagger UI's scripts and styles, from the swagger-ui-bundle package."""
        return send_from_directory(swagger_ui_path, filename, max_age=3600)

    return blp
