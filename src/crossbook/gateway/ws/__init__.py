"""The WebSocket gateway: Binance-compatible streams, native `/v1/ws`, and the fan-out.

- `fanout`: topics, subscribers, bounded queues and the slow-consumer policy (no sockets);
- `encode`: stream values to Binance and native bytes, once per topic;
- `publisher`: the sequencer sink that folds market data and publishes per batch / 100 ms;
- `user`: order and balance events per account (Binance user data stream and native);
- `binance`, `native`: what a connection of each dialect accepts and answers;
- `server`: the picows server, routing, heartbeats, limits, `/stats` and `/clients`.
"""

from crossbook.gateway.ws.fanout import Hub, Limits
from crossbook.gateway.ws.server import WebSocketGateway

__all__ = ["Hub", "Limits", "WebSocketGateway"]
