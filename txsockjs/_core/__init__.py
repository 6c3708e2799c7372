"""
The session core of a SockJS service, with no twisted.web in it: options, frames and
payloads, sessions and the service that holds them, timers, numbers and log events.

The layers above it: :mod:`txsockjs._policy` (who may open and use a session),
:mod:`txsockjs._web` and :mod:`txsockjs._websocket` (the HTTP and WebSocket machinery),
:mod:`txsockjs.transports` (the SockJS transports on top of both).
"""
