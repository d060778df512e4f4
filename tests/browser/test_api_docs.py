"""``/api/docs`` in a real Chromium with every request off the machine refused: Swagger UI's
files and the OpenAPI document all come from pointbridge itself."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, Route, expect

Shoot = Callable[[str], None]


def test_the_api_docs_render_with_the_network_off(page: Page, console: str, shoot: Shoot) -> None:
    refused: list[str] = []

    def local_only(route: Route) -> None:
        if route.request.url.startswith(console):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    page.route("**/*", local_only)
    page.goto("/api/docs")
    for route in ("/api/customers", "/api/integrations/{name}/export"):
        path = page.locator(".opblock-summary-path", has_text=route).first
        expect(path).to_be_visible()
    shoot("api-docs")
    assert refused == []
