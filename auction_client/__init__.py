"""A client library for the auction service's WebSocket API (docs/websocket.md)."""
