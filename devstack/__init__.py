"""Local stack: an API Gateway (REST + WebSocket + @connections) emulator for app.py.

Dev-only, never shipped to Lambda. ``python -m devstack run`` (``make run``) serves the
stack; :class:`devstack.stack.LocalStack` starts one from tests and benchmarks.
"""
