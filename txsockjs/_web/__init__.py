"""
The twisted.web layer of a SockJS service: answers (:mod:`.responses`), bounded request
bodies (:mod:`.request`), the leaf resource every endpoint derives from (:mod:`.leaf`), and
where services are mounted (:mod:`.prefix`). Transports build on it; the session core
(``txsockjs._core``) knows nothing of it.
"""
