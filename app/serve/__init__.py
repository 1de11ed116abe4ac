"""`kinemo serve`: the engine over HTTP, and the client the studio uses to drive a remote one."""
