"""Our SIP and media stack: sans-I/O state machines (messages, transactions, dialogs) and a thin asyncio layer."""
