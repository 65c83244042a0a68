"""An OpenAI-compatible server in front of an AI Engine chatbot.

Any OpenAI client or tool can talk to the chatbot through it: ``opchatgpts bridge --url
SITE`` on the command line, or ``create_app(client)`` to mount it in your own aiohttp server::

    from aiohttp import web
    import opchatgpts
    from opchatgpts.bridge import create_app

    async def app() -> web.Application:
        client = opchatgpts.AsyncClient(url="https://example.com")
        app = create_app(client)
        app.on_cleanup.append(lambda _: client.aclose())
        return app

    web.run_app(app(), host="127.0.0.1", port=8000)

Nothing else in the package imports this one: ``import opchatgpts`` does not load it.
"""

from ._app import DRAIN_TIMEOUT, create_app, end_open_answers

__all__ = ["create_app", "end_open_answers", "DRAIN_TIMEOUT"]
