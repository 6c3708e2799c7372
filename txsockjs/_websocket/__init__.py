"""
WebSocket machinery under the websocket transports: a frame codec of our own for the
common case (:mod:`.frames`), and the one adapter that touches autobahn's internals
(:mod:`.autobahn_adapter`).
"""
